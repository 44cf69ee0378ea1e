import { createHash } from "node:crypto";

/** The build queue a derivation goes to: its system and its sorted, de-duplicated features. */
export function queueKeyOf(system: string, requiredFeatures: readonly string[]): string {
  return `${system}|${[...new Set(requiredFeatures)].sort().join(",")}`;
}

export function parseQueueKey(key: string): { system: string; features: string[] } {
  const [system = "", features = ""] = key.split("|");
  return { system, features: features ? features.split(",") : [] };
}

/**
 * Deterministic SQS FIFO name for a queue key: SQS names allow only [A-Za-z0-9_-] and 80
 * characters, so the key is hashed; `prefix` scopes it to the app and stage.
 */
export function buildQueueName(prefix: string, key: string): string {
  return `${prefix}${createHash("sha256").update(key).digest("hex").slice(0, 24)}.fifo`;
}
