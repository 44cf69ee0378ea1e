/**
 * `POST /cache/missing`: which of thousands of store paths the built-in cache lacks, from the
 * index in one pass (docs/cache.md). Paths it holds count as used now — an evaluation asking
 * for them is what keeps a job's closure from retention.
 */
import { storePathHash } from "@nimbus/cache";
import { cacheSettings } from "../platform/cache-settings.ts";
import { presentPaths, touchPaths } from "../storage/cache-index.ts";

/** Marks at most this many paths used per request; the rest are marked by the next one. */
const MAX_TOUCHES = 1000;

export async function missingPaths(storePaths: readonly string[], now = new Date()): Promise<string[]> {
  const byHash = new Map(storePaths.map((p) => [storePathHash(p), p]));
  const present = await presentPaths([...byHash.keys()]);
  await touchStale([...present.values()], now);
  return storePaths.filter((p) => !present.has(storePathHash(p)));
}

/** Marks used what was last marked more than a tenth of the retention ago. */
export async function touchStale(paths: ReadonlyArray<{ storeHash: string; lastUsedAt: string }>, now: Date): Promise<void> {
  const fresh = new Date(now.getTime() - cacheSettings().retentionMs / 10);
  const stale = paths.filter((p) => p.lastUsedAt < fresh.toISOString()).slice(0, MAX_TOUCHES);
  if (stale.length > 0) await touchPaths(stale.map((p) => p.storeHash), now, fresh);
}
