/**
 * Retention of the built-in cache (docs/cache.md, "Retention"), run by the sweeper: a path
 * unused for longer than the retention (not published, asked for by an evaluation or read since)
 * and referred to by no other cached path is removed, its NAR file with it once no path uses
 * that file. A job's outputs were asked for by its evaluation or published by its builds, and
 * they refer to the rest of their closure, so nothing in the closure of a job's outputs younger
 * than the retention goes. Each run looks at a bounded number of paths, going on where the last
 * one stopped; every removal is conditional on the path still being unused.
 */
import { storePathHash } from "@nimbus/cache";
import { cacheSettings } from "../platform/cache-settings.ts";
import type { CachePathItem } from "../storage/cache-items.ts";
import {
  addToStats,
  cacheStats,
  deleteCachePath,
  deleteReferences,
  getCachePath,
  leastRecentlyUsed,
  pathsUsingFile,
  recordCollection,
  referrersOf,
  setCollectCursor,
} from "../storage/cache-index.ts";
import { deleteObject } from "../storage/cache-objects.ts";

export interface CollectReport {
  cachePathsRemoved: number;
  cacheBytesRemoved: number;
}

export async function collectCache(now = new Date()): Promise<CollectReport> {
  const settings = cacheSettings();
  const cutoff = new Date(now.getTime() - settings.retentionMs);
  const { collectCursor } = await cacheStats();
  const { items, more } = await leastRecentlyUsed(cutoff, settings.collectBatch, collectCursor);
  const report: CollectReport = { cachePathsRemoved: 0, cacheBytesRemoved: 0 };
  for (const item of items) {
    if (await referredTo(item.storeHash)) continue;
    if (!(await deleteCachePath(item.storeHash, cutoff))) continue;
    await forget(item);
    report.cachePathsRemoved++;
    report.cacheBytesRemoved += item.fileSize;
  }
  const last = items.at(-1);
  // A full page: go on after it next time; the end of the old paths: start over.
  const cursor = more && last ? { lastUsedAt: last.lastUsedAt, storeHash: last.storeHash } : undefined;
  if (cursor !== undefined || collectCursor !== undefined) await setCollectCursor(cursor);
  if (items.length > 0) await recordCollection({ at: now.toISOString(), removedPaths: report.cachePathsRemoved, removedBytes: report.cacheBytesRemoved });
  return report;
}

/** Whether a published path refers to it; references left by paths since removed are cleaned up on the way. */
async function referredTo(storeHash: string): Promise<boolean> {
  for (;;) {
    const edges = await referrersOf(storeHash, 25);
    if (edges.length === 0) return false;
    for (const edge of edges) {
      if (await getCachePath(edge.referrer)) return true;
      await deleteReferences(edge.referrer, [storeHash]);
    }
  }
}

async function forget(item: CachePathItem): Promise<void> {
  await deleteReferences(item.storeHash, item.references.map(storePathHash).filter((h) => h !== item.storeHash));
  await addToStats({ paths: -1, fileBytes: -item.fileSize, narBytes: -item.narSize });
  // Files are named by their hash, so two paths may share one: it goes with the last of them.
  if ((await pathsUsingFile(item.fileKey)).length === 0) await deleteObject(item.fileKey);
}
