/**
 * Hercules' `secrets.json` (docs/effects.md, "Secrets"): the secrets an agent may give effects,
 * each with the condition under which it may. Parsing, conditions and the grant are pure;
 * `loadSecretsJson` reads the file. Nothing here logs or returns a secret's data except the grant.
 */
import { readFile, stat } from "node:fs/promises";

/** Hercules' condition language: no `not`, by design (a block list is not safe under renames). */
export type Condition =
  | boolean
  | "isDefaultBranch"
  | "isTag"
  | { and: Condition[] }
  | { or: Condition[] }
  | { isBranch: string }
  | { isRepo: string }
  | { isOwner: string };

export interface Secret {
  /** Free-form JSON: what the effect receives. */
  data: Record<string, unknown>;
  /** Absent: never given to an effect (Hercules requires one since 0.9). */
  condition?: Condition;
}

/** The job an effect runs for, as conditions see it. */
export interface SecretContext {
  /** `owner` of `owner/name`. */
  owner: string;
  /** `name` of `owner/name`. */
  repo: string;
  /** The job's ref: `refs/heads/main`, `refs/tags/v1`, `refs/pull/3/head`. */
  ref: string;
  /** Whether `ref` is the repository's default branch. */
  isDefaultBranch: boolean;
}

/** `secrets.json` cannot be used: every problem, each naming the secret and the key. */
export class SecretsConfigError extends Error {
  override readonly name = "SecretsConfigError";
}

/** An effect asked for a secret it may not have, or one that does not exist. */
export class SecretRefusedError extends Error {
  override readonly name = "SecretRefusedError";
}

const SECRET_NAME = /^[A-Za-z0-9_.:@+-]{1,128}$/;
const CONDITION_KEYS = ["and", "or", "isBranch", "isRepo", "isOwner"] as const;

/** Parses the text of a `secrets.json`; throws SecretsConfigError listing every problem. */
export function parseSecretsJson(text: string, source = "secrets.json"): Map<string, Secret> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SecretsConfigError(`${source}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) {
    throw new SecretsConfigError(`${source}: must be a JSON object from secret names to secrets, e.g. {"deploy": {"kind": "Secret", "data": {…}, "condition": "isDefaultBranch"}}`);
  }
  const problems: string[] = [];
  const secrets = new Map<string, Secret>();
  for (const [name, value] of Object.entries(raw)) {
    const at = `${source}: secret ${JSON.stringify(name)}`;
    if (!SECRET_NAME.test(name)) {
      problems.push(`${at}: a secret name must be 1–128 letters, digits or . _ : @ + -`);
      continue;
    }
    if (!isObject(value)) {
      problems.push(`${at}: must be an object {"kind": "Secret", "data": {…}, "condition": …}`);
      continue;
    }
    const unknown = Object.keys(value).filter((k) => !["kind", "data", "condition"].includes(k));
    if (unknown.length > 0) problems.push(`${at}: ${unknown.map((k) => JSON.stringify(k)).join(", ")} is not a key of a secret (kind, data, condition)`);
    if (value.kind !== "Secret") problems.push(`${at}: "kind" must be "Secret"`);
    if (!isObject(value.data)) problems.push(`${at}: "data" must be a JSON object (the values the effect receives)`);
    let condition: Condition | undefined;
    if (value.condition !== undefined) {
      const parsed = parseCondition(value.condition, "condition");
      if (typeof parsed === "string") problems.push(`${at}: ${parsed}`);
      else condition = parsed.condition;
    }
    if (isObject(value.data)) secrets.set(name, { data: value.data, ...(condition !== undefined ? { condition } : {}) });
  }
  if (problems.length > 0) throw new SecretsConfigError(problems.join("\n"));
  return secrets;
}

/** A condition, or a message naming where in it the problem is. */
export function parseCondition(value: unknown, at: string): { condition: Condition } | string {
  if (typeof value === "boolean") return { condition: value };
  if (value === "isDefaultBranch" || value === "isTag") return { condition: value };
  if (typeof value === "string") return `"${at}": unknown condition ${JSON.stringify(value)} (the strings are "isDefaultBranch" and "isTag")`;
  if (!isObject(value)) return `"${at}": a condition is true, false, "isDefaultBranch", "isTag" or an object with one of ${CONDITION_KEYS.join(", ")}`;
  const keys = Object.keys(value);
  if (keys.length !== 1) return `"${at}": a condition object has exactly one key (${CONDITION_KEYS.join(", ")}), not ${keys.length}`;
  const key = keys[0]!;
  const operand = value[key];
  switch (key) {
    case "and":
    case "or": {
      if (!Array.isArray(operand)) return `"${at}.${key}": must be a list of conditions`;
      const parts: Condition[] = [];
      for (const [i, part] of operand.entries()) {
        const parsed = parseCondition(part, `${at}.${key}[${i}]`);
        if (typeof parsed === "string") return parsed;
        parts.push(parsed.condition);
      }
      return { condition: key === "and" ? { and: parts } : { or: parts } };
    }
    case "isBranch":
    case "isRepo":
    case "isOwner":
      if (typeof operand !== "string" || operand === "") return `"${at}.${key}": must be a non-empty string`;
      return { condition: { [key]: operand } as Condition };
    default:
      return `"${at}": unknown condition ${JSON.stringify(key)} (${CONDITION_KEYS.join(", ")}, or the strings "isDefaultBranch" and "isTag"; there is no "not")`;
  }
}

/**
 * Whether `condition` holds for the job, and when it does not, why (the first parts that failed,
 * as Hercules' trace says it).
 */
export function evaluateCondition(condition: Condition, context: SecretContext): { holds: boolean; why: string[] } {
  const why: string[] = [];
  const holds = (c: Condition): boolean => {
    if (typeof c === "boolean") {
      if (!c) why.push("false: never");
      return c;
    }
    if (c === "isDefaultBranch") {
      if (context.isDefaultBranch) return true;
      why.push(`isDefaultBranch: ref ${JSON.stringify(context.ref)} is not the default branch`);
      return false;
    }
    if (c === "isTag") {
      if (context.ref.startsWith("refs/tags/")) return true;
      why.push(`isTag: ref ${JSON.stringify(context.ref)} is not a tag`);
      return false;
    }
    if ("and" in c) return c.and.every(holds);
    if ("or" in c) {
      if (c.or.length === 0) why.push("or: an empty or never holds");
      return c.or.some(holds);
    }
    if ("isBranch" in c) {
      if (context.ref === `refs/heads/${c.isBranch}`) return true;
      why.push(`isBranch: ref ${JSON.stringify(context.ref)} is not ${JSON.stringify(`refs/heads/${c.isBranch}`)}`);
      return false;
    }
    if ("isRepo" in c) {
      if (context.repo === c.isRepo) return true;
      why.push(`isRepo: repository ${JSON.stringify(context.repo)} is not ${JSON.stringify(c.isRepo)}`);
      return false;
    }
    if (context.owner === c.isOwner) return true;
    why.push(`isOwner: owner ${JSON.stringify(context.owner)} is not ${JSON.stringify(c.isOwner)}`);
    return false;
  };
  const result = holds(condition);
  return { holds: result, why: result ? [] : why };
}

/**
 * What an effect asks for: its derivation's `secretsMap` (or `secretsToUse`) variable, a JSON
 * object from the name the effect reads to the name in `secrets.json` (hci-effects' `mkEffect`).
 */
export function parseSecretsMap(value: string | undefined, variable = "secretsMap"): Map<string, string> {
  if (value === undefined || value.trim() === "") return new Map();
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    throw new SecretRefusedError(`the effect's ${variable} is not JSON (hci-effects' mkEffect writes builtins.toJSON of an attribute set)`);
  }
  if (!isObject(raw)) throw new SecretRefusedError(`the effect's ${variable} must be an object from the names the effect reads to secret names`);
  const wanted = new Map<string, string>();
  for (const [as, name] of Object.entries(raw)) {
    if (isObject(name) && name.type === "GitToken") {
      throw new SecretRefusedError(`the effect's ${variable}.${as} asks for a GitToken, which Nimbus does not give effects; put a token in secrets.json and name it instead`);
    }
    if (typeof name !== "string" || name === "") throw new SecretRefusedError(`the effect's ${variable}.${as} must be the name of a secret in secrets.json`);
    wanted.set(as, name);
  }
  return wanted;
}

/** A condition as it is written in secrets.json, for messages (conditions are not secret). */
export const conditionText = (condition: Condition): string => JSON.stringify(condition);

/**
 * Exactly the secrets an effect asked for, under the names it asked for them by, each only if its
 * condition holds for the job; any one refused refuses the effect, naming the secret and its
 * condition. The result is what `HERCULES_CI_SECRETS_JSON` points to: `{name: {kind, data}}`.
 */
export function grantSecrets(
  wanted: ReadonlyMap<string, string>,
  secrets: ReadonlyMap<string, Secret> | undefined,
  context: SecretContext,
): Record<string, { kind: "Secret"; data: Record<string, unknown> }> {
  const granted: Record<string, { kind: "Secret"; data: Record<string, unknown> }> = {};
  const job = `${context.owner}/${context.repo} at ${context.ref}`;
  for (const [as, name] of wanted) {
    const secret = secrets?.get(name);
    if (!secrets) throw new SecretRefusedError(`the effect asks for secret ${JSON.stringify(name)}, but this agent has no secrets.json (secretsJsonPath)`);
    if (!secret) throw new SecretRefusedError(`the effect asks for secret ${JSON.stringify(name)}, which is not in this agent's secrets.json`);
    if (secret.condition === undefined) {
      throw new SecretRefusedError(`secret ${JSON.stringify(name)} has no "condition" in secrets.json, so no effect may have it (add one, e.g. "isDefaultBranch")`);
    }
    const { holds, why } = evaluateCondition(secret.condition, context);
    if (!holds) {
      throw new SecretRefusedError(`secret ${JSON.stringify(name)} is refused for ${job}: its condition ${conditionText(secret.condition)} does not hold (${why.join("; ")})`);
    }
    granted[as] = { kind: "Secret", data: secret.data };
  }
  return granted;
}

/**
 * Reads `secrets.json`. It must be readable by the agent's user alone: builders run as other
 * users and could read it otherwise.
 */
export async function loadSecretsJson(filePath: string): Promise<Map<string, Secret>> {
  let text: string;
  try {
    text = await readFile(filePath, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SecretsConfigError(
      code === "ENOENT"
        ? `${filePath}: no such file (secretsJsonPath in agent.toml points here; see docs/effects.md, "Secrets", for its format)`
        : `${filePath}: cannot be read (${code ?? (err as Error).message})`,
    );
  }
  const secrets = parseSecretsJson(text, filePath);
  const mode = (await stat(filePath)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new SecretsConfigError(
      `${filePath}: holds secrets but is readable by other users (mode ${mode.toString(8).padStart(4, "0")}); builders run as other users and could read it — chmod 600 ${filePath}`,
    );
  }
  return secrets;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
