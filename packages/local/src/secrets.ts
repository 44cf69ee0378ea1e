/**
 * Local stand-ins for `sst.Secret`s, kept in `<dataDir>/secrets.json` (mode 0600): random
 * values for the stack's own (the admin token, the webhook secret), `none` for those the user
 * brings (the GitHub App's id and key, a personal token: docs/github.md), until they are set.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateSecretKey, parseSecretKey } from "@nimbus/cache";

export class SecretsFileError extends Error {
  override name = "SecretsFileError";
}

/** Secrets the user brings: written as `none` (unset) rather than made up. */
export const USER_SECRETS: readonly string[] = ["GithubAppId", "GithubAppPrivateKey", "GithubToken"];

/** The built-in cache's key pair (docs/cache.md): a Nix binary cache key, as `nix-store --generate-binary-cache-key` makes. */
export const LOCAL_CACHE_KEY_NAME = "nimbus-local-1";

/** A fresh value for a secret the stack makes itself; the cache's public key follows its signing key. */
function freshSecret(name: string, known: Record<string, unknown>): string {
  if (USER_SECRETS.includes(name)) return "none";
  if (name === "CacheSigningKey") return generateSecretKey(LOCAL_CACHE_KEY_NAME).text;
  if (name === "CachePublicKey" && typeof known.CacheSigningKey === "string") return parseSecretKey(known.CacheSigningKey).publicKey.text;
  return randomBytes(32).toString("base64url");
}

export function secretsPath(dataDir: string): string {
  return join(dataDir, "secrets.json");
}

/** Reads the secrets file, adding a fresh value for any name it lacks; returns every requested secret. */
export async function loadOrCreateSecrets(
  dataDir: string,
  names: readonly string[],
): Promise<Record<string, string>> {
  const path = secretsPath(dataDir);
  let stored: Record<string, unknown> = {};
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  if (text !== undefined) {
    try {
      stored = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new SecretsFileError(`${path} is not valid JSON; fix or delete it`, { cause: error });
    }
    if (typeof stored !== "object" || stored === null || Array.isArray(stored)) {
      throw new SecretsFileError(`${path} must hold a JSON object of secret name → string`);
    }
  }

  const secrets: Record<string, string> = {};
  let changed = text === undefined;
  for (const name of names) {
    const value = stored[name];
    if (value === undefined) {
      secrets[name] = freshSecret(name, { ...stored, ...secrets });
      changed = true;
    } else if (typeof value === "string" && value !== "") {
      secrets[name] = value;
    } else {
      throw new SecretsFileError(`${path}: "${name}" must be a non-empty string`);
    }
  }

  if (changed) {
    await mkdir(dataDir, { recursive: true });
    await writeFile(path, `${JSON.stringify({ ...stored, ...secrets }, null, 2)}\n`, { mode: 0o600 });
  }
  // writeFile's mode applies only on creation; keep the file private whatever created it.
  await chmod(path, 0o600);
  return secrets;
}
