/**
 * `agent.toml`: Hercules CI agent key names plus a few Nimbus additions, validated by one
 * strict zod schema. Every problem is reported as `<file>: "<key>" must be …` so the person
 * editing the file knows which line to fix.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { z } from "zod";
import { type AgentInfo, FeatureName, SystemName } from "@nimbus/protocol";
import { AgentConfigError } from "./errors.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

/** The configuration after defaults and path resolution; every path is absolute. */
export interface AgentConfig {
  /** Where it was read from, for messages. */
  source: string;
  /** The HTTP API's base URL, without a trailing slash. */
  apiBaseUrl: string;
  clusterJoinTokenPath: string;
  /** "auto" already turned into a number. */
  concurrentTasks: number;
  baseDirectory: string;
  workDirectory: string;
  labels: AgentInfo["labels"];
  binaryCachesPath: string | undefined;
  secretsJsonPath: string | undefined;
  /** Passed to every Nix invocation as `--option NAME VALUE`. */
  nixSettings: Record<string, string>;
  /** Whether Nix keeps the machine's own substituters (nix.conf) besides the configured caches. */
  machineSubstituters: boolean;
  /** Whether Nix substitutes from and the agent pushes to Nimbus's built-in cache (docs/cache.md). */
  builtinCache: boolean;
  remotePlatformsWithSameFeatures: string[];
  logLevel: LogLevel;
  /** Replaces what Nix reports when set. */
  systems: string[] | undefined;
  /** Replaces Nix's `system-features` when set. */
  systemFeatures: string[] | undefined;
  mandatoryFeatures: string[];
  heartbeatIntervalMs: number;
  /** What SIGINT/SIGTERM (and `stop()`) do with running tasks: wait for them, or hand them back. */
  shutdown: ShutdownMode;
  /** How long `finish` waits for running tasks and their acknowledgements. */
  shutdownTimeoutMs: number;
  /** With nothing acknowledged for this long while batches or results wait, the agent reconnects. */
  ackTimeoutMs: number;
  /** How evaluation (untrusted code) is confined: see docs/security.md. */
  evaluation: EvaluationSettings;
  /** Whether evaluate tasks may fetch `file://` URLs and local paths (only the local stack's agents). */
  allowLocalRepositories: boolean;
}

/** What confines an evaluation (docs/security.md). */
export interface EvaluationSettings {
  /** `namespaces`: its own mount, PID and network namespaces; `none`: Nix's restricted mode alone. */
  isolation: EvaluationIsolation;
  /** Nix's `allowed-uris`; empty means the evaluator has no network at all. */
  allowedUris: string[];
  /** More paths to hide from the evaluator, besides the agent's own (absolute). */
  hiddenPaths: string[];
  timeoutMs: number;
  /** The evaluator's address-space limit (RLIMIT_AS), in bytes. */
  memoryBytes: number;
  /** Most attributes (and attribute errors) one evaluation may report. */
  maxAttributes: number;
}

export const EVALUATION_ISOLATION_MODES = ["namespaces", "none"] as const;
export type EvaluationIsolation = (typeof EVALUATION_ISOLATION_MODES)[number];

export const SHUTDOWN_MODES = ["finish", "hand-back"] as const;
export type ShutdownMode = (typeof SHUTDOWN_MODES)[number];

/** Hercules' katip severities, accepted so a Hercules agent.toml keeps working. */
const HERCULES_LOG_LEVELS: Record<string, LogLevel> = {
  DebugS: "debug",
  InfoS: "info",
  NoticeS: "info",
  WarningS: "warn",
  ErrorS: "error",
  CriticalS: "error",
  AlertS: "error",
  EmergencyS: "error",
};

/** Hercules keys Nimbus does not implement: named as such instead of as typos. */
const HERCULES_ONLY_KEYS = new Set([
  "staticSecretsDirectory",
  "nixUserIsTrusted",
  "nixVerbosity",
  "allowInsecureBuiltinFetchers",
  "effectMountables",
]);

/** The protocol's AgentInfo caps these; checking here names the key instead of failing later. */
const MAX_CONCURRENT_TASKS = 1024;
const MAX_LABEL_NAME = 128;
/** API Gateway drops a connection idle for 10 minutes. */
const MAX_HEARTBEAT_SECONDS = 600;
/** A day: longer is surely a mistake (and beyond what setTimeout holds exactly anyway). */
const MAX_SHUTDOWN_SECONDS = 86_400;
const MAX_ACK_TIMEOUT_SECONDS = 3_600;
const MAX_EVALUATION_SECONDS = 86_400;
/** Below this Nix's evaluator cannot even start (its garbage collector reserves its heap first). */
const MIN_EVALUATION_MIB = 256;
const MAX_EVALUATION_ATTRIBUTES = 10_000_000;

/**
 * Nix settings the agent sets itself for evaluation (docs/security.md): a `nixSettings` entry
 * would loosen what confines untrusted code, so each is refused, naming the key to use instead.
 */
const EVALUATION_NIX_SETTINGS: Record<string, string> = {
  "restrict-eval": "the agent always evaluates in restricted mode",
  "pure-eval": "the agent evaluates flakes in pure mode",
  "allowed-uris": 'use "allowedUris"',
  "extra-allowed-uris": 'use "allowedUris"',
  "allow-unsafe-native-code-during-evaluation": "evaluated code must not run programs",
  "nix-path": "evaluation sees only the repository: no search path",
  "extra-nix-path": "evaluation sees only the repository: no search path",
};

const filePath = z.string().min(1);

const AgentToml = z.strictObject({
  apiBaseUrl: z.url({ protocol: /^https?$/ }),
  clusterJoinTokenPath: filePath,
  concurrentTasks: z.union([z.number().int().min(1).max(MAX_CONCURRENT_TASKS), z.literal("auto")]).default("auto"),
  baseDirectory: filePath.optional(),
  workDirectory: filePath.optional(),
  labels: z.record(z.string().min(1).max(MAX_LABEL_NAME), z.json()).default({}),
  binaryCachesPath: filePath.optional(),
  secretsJsonPath: filePath.optional(),
  nixSettings: z
    .record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string())
    .default({})
    .check((ctx) => {
      for (const name of Object.keys(ctx.value)) {
        if (name in EVALUATION_NIX_SETTINGS) ctx.issues.push({ code: "custom", input: ctx.value, path: [name], message: "evaluation-setting" });
      }
    }),
  machineSubstituters: z.boolean().default(true),
  builtinCache: z.boolean().default(true),
  remotePlatformsWithSameFeatures: z.array(SystemName).default([]),
  logLevel: z.enum([...LOG_LEVELS, ...Object.keys(HERCULES_LOG_LEVELS)]).default("info"),
  systems: z.array(SystemName).min(1).optional(),
  systemFeatures: z.array(FeatureName).optional(),
  mandatoryFeatures: z.array(FeatureName).default([]),
  heartbeatIntervalSeconds: z.number().positive().lt(MAX_HEARTBEAT_SECONDS).default(30),
  shutdown: z.enum(SHUTDOWN_MODES).default("finish"),
  shutdownTimeoutSeconds: z.number().min(0).max(MAX_SHUTDOWN_SECONDS).default(600),
  ackTimeoutSeconds: z.number().positive().max(MAX_ACK_TIMEOUT_SECONDS).default(60),
  evaluationIsolation: z.enum(EVALUATION_ISOLATION_MODES).default("namespaces"),
  allowedUris: z.array(z.string().min(1).regex(/^[^\s]+$/)).default([]),
  evaluationHiddenPaths: z.array(filePath).default([]),
  evaluationTimeoutSeconds: z.number().positive().max(MAX_EVALUATION_SECONDS).default(1800),
  evaluationMemoryMiB: z.number().int().min(MIN_EVALUATION_MIB).default(8192),
  evaluationMaxAttributes: z.number().int().min(1).max(MAX_EVALUATION_ATTRIBUTES).default(100_000),
  allowLocalRepositories: z.boolean().default(false),
});
type AgentTomlKey = keyof typeof AgentToml.shape;

/** What each key must hold (`whole`) and, for tables and arrays, what each entry must hold. */
const EXPECTED: Record<AgentTomlKey, { whole: string; entry?: string }> = {
  apiBaseUrl: { whole: 'an http:// or https:// URL, such as "http://127.0.0.1:4800"' },
  clusterJoinTokenPath: { whole: "a file path (a non-empty string)" },
  concurrentTasks: { whole: 'a positive integer or "auto"' },
  baseDirectory: { whole: "a directory path (a non-empty string)" },
  workDirectory: { whole: "a directory path (a non-empty string)" },
  labels: {
    whole: "a table of labels",
    entry: `a label: a name of at most ${MAX_LABEL_NAME} characters with a JSON value (string, number, boolean, array or table; not a date)`,
  },
  binaryCachesPath: { whole: "a file path (a non-empty string)" },
  secretsJsonPath: { whole: "a file path (a non-empty string)" },
  nixSettings: {
    whole: "a table of Nix settings",
    entry: 'a Nix setting name (letters, digits, -) with a string value as nix.conf has it, e.g. "true" or "a b"',
  },
  machineSubstituters: { whole: "true (use nix.conf's substituters besides the configured caches) or false (only the configured caches)" },
  builtinCache: { whole: "true (read from and push to Nimbus's built-in cache) or false (not at all)" },
  remotePlatformsWithSameFeatures: { whole: "an array of Nix systems", entry: 'a Nix system such as "aarch64-linux"' },
  logLevel: { whole: `one of ${LOG_LEVELS.map((l) => `"${l}"`).join(", ")} (or a Hercules level such as "InfoS")` },
  systems: { whole: "a non-empty array of Nix systems", entry: 'a Nix system such as "x86_64-linux"' },
  systemFeatures: { whole: "an array of Nix system features", entry: 'a Nix system feature such as "kvm"' },
  mandatoryFeatures: { whole: "an array of Nix system features", entry: 'a Nix system feature such as "kvm"' },
  heartbeatIntervalSeconds: { whole: `a positive number of seconds below ${MAX_HEARTBEAT_SECONDS}` },
  shutdown: { whole: `"finish" (let running tasks end) or "hand-back" (stop them and give them back to the service)` },
  shutdownTimeoutSeconds: { whole: `a number of seconds from 0 to ${MAX_SHUTDOWN_SECONDS}` },
  ackTimeoutSeconds: { whole: `a positive number of seconds, at most ${MAX_ACK_TIMEOUT_SECONDS}` },
  evaluationIsolation: { whole: '"namespaces" (the default: the evaluator cannot see the agent\'s files) or "none" (Nix\'s restricted mode alone; see docs/security.md)' },
  allowedUris: { whole: "an array of URI prefixes", entry: 'a URI prefix without spaces, such as "https://github.com/"' },
  evaluationHiddenPaths: { whole: "an array of paths", entry: "a path (a non-empty string)" },
  evaluationTimeoutSeconds: { whole: `a positive number of seconds, at most ${MAX_EVALUATION_SECONDS}` },
  evaluationMemoryMiB: { whole: `a whole number of MiB, at least ${MIN_EVALUATION_MIB}` },
  evaluationMaxAttributes: { whole: `a whole number from 1 to ${MAX_EVALUATION_ATTRIBUTES}` },
  allowLocalRepositories: { whole: "true or false" },
};
const KNOWN_KEYS = Object.keys(EXPECTED);

/**
 * Parses and validates the text of an agent.toml. `configDir` is the directory of the file:
 * `baseDirectory` resolves against it, the other paths against `baseDirectory`.
 */
export function parseAgentConfig(text: string, configDir: string, source = "agent.toml"): AgentConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      // smol-toml's message is "Invalid TOML document: <what>\n\n<code block>"; keep <what>.
      const what = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document:\s*/, "");
      throw new AgentConfigError(`${source}:${err.line}:${err.column}: invalid TOML: ${what}`);
    }
    throw err;
  }

  const parsed = AgentToml.safeParse(raw);
  if (!parsed.success) {
    const given = new Set(Object.keys(raw as object));
    const problems = parsed.error.issues.flatMap((issue) => describeIssue(source, issue, given));
    // One wrong value can fail several checks; the person needs to read it once.
    throw new AgentConfigError([...new Set(problems)]);
  }
  const toml = parsed.data;

  const baseDirectory = path.resolve(configDir, toml.baseDirectory ?? ".");
  const fromBase = (p: string) => path.resolve(baseDirectory, p);
  return {
    source,
    apiBaseUrl: toml.apiBaseUrl.replace(/\/+$/, ""),
    clusterJoinTokenPath: fromBase(toml.clusterJoinTokenPath),
    concurrentTasks:
      toml.concurrentTasks === "auto" ? Math.min(os.availableParallelism(), MAX_CONCURRENT_TASKS) : toml.concurrentTasks,
    baseDirectory,
    workDirectory: fromBase(toml.workDirectory ?? "work"),
    labels: toml.labels,
    binaryCachesPath: toml.binaryCachesPath === undefined ? undefined : fromBase(toml.binaryCachesPath),
    secretsJsonPath: toml.secretsJsonPath === undefined ? undefined : fromBase(toml.secretsJsonPath),
    nixSettings: toml.nixSettings,
    machineSubstituters: toml.machineSubstituters,
    builtinCache: toml.builtinCache,
    remotePlatformsWithSameFeatures: toml.remotePlatformsWithSameFeatures,
    logLevel: HERCULES_LOG_LEVELS[toml.logLevel] ?? (toml.logLevel as LogLevel),
    systems: toml.systems,
    systemFeatures: toml.systemFeatures,
    mandatoryFeatures: toml.mandatoryFeatures,
    heartbeatIntervalMs: Math.round(toml.heartbeatIntervalSeconds * 1000),
    shutdown: toml.shutdown,
    shutdownTimeoutMs: Math.round(toml.shutdownTimeoutSeconds * 1000),
    ackTimeoutMs: Math.round(toml.ackTimeoutSeconds * 1000),
    evaluation: {
      isolation: toml.evaluationIsolation,
      allowedUris: toml.allowedUris,
      hiddenPaths: toml.evaluationHiddenPaths.map(fromBase),
      timeoutMs: Math.round(toml.evaluationTimeoutSeconds * 1000),
      memoryBytes: toml.evaluationMemoryMiB * 1024 * 1024,
      maxAttributes: toml.evaluationMaxAttributes,
    },
    allowLocalRepositories: toml.allowLocalRepositories,
  };
}

/** Reads `configPath` and parses it; messages name the file as it was given. */
export async function loadAgentConfig(configPath: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(configPath, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AgentConfigError(
      code === "ENOENT"
        ? `${configPath}: no such file — write an agent.toml (see docs/agent.md)`
        : `${configPath}: cannot read it (${code ?? String(err)})`,
    );
  }
  return parseAgentConfig(text, path.dirname(path.resolve(configPath)), configPath);
}

/** `given`: the keys present in the file (zod issues do not carry the input by default). */
function describeIssue(source: string, issue: z.core.$ZodIssue, given: Set<string>): string[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => `${source}: unknown key "${key}"${unknownKeyHint(key)}`);
  }
  const [key, ...rest] = issue.path;
  const expected = EXPECTED[String(key) as AgentTomlKey];
  if (expected === undefined) return [`${source}: ${issue.message}`];
  if (rest.length === 0) {
    if (!given.has(String(key))) {
      return [`${source}: missing required key "${String(key)}" (${expected.whole})`];
    }
    if (issue.code === "too_big" && issue.origin === "number") {
      const bound = issue.inclusive ? `at most ${issue.maximum}` : `below ${issue.maximum}`;
      return [`${source}: "${String(key)}" must be ${bound}`];
    }
    return [`${source}: "${String(key)}" must be ${expected.whole}`];
  }
  if (issue.message === "evaluation-setting") {
    const name = String(rest[0]);
    return [`${source}: "nixSettings.${name}" cannot be set: ${EVALUATION_NIX_SETTINGS[name]} (docs/security.md)`];
  }
  return [`${source}: "${formatPath(issue.path)}" must be ${expected.entry ?? expected.whole}`];
}

/** `labels.team`, `systems[2]`: how the place reads in the TOML file. */
function formatPath(parts: readonly PropertyKey[]): string {
  return parts
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}

function unknownKeyHint(key: string): string {
  if (HERCULES_ONLY_KEYS.has(key)) return " (a Hercules CI agent setting Nimbus does not support: remove it)";
  const near = KNOWN_KEYS.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  return near === undefined ? "" : ` (did you mean "${near}"?)`;
}

/** Levenshtein distance, for "did you mean" on misspelt keys. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitution));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
