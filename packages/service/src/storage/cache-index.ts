/**
 * The built-in cache's index in DynamoDB (docs/cache.md): published paths, the references
 * between them, and the totals. Every write that decides something is conditional.
 */
import { BatchGetCommand, BatchWriteCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import pMap from "p-map";
import { z } from "zod";
import { dynamo } from "../platform/aws-clients.ts";
import { tableName } from "../platform/linked-resources.ts";
import { CACHE_STATS_KEY, CACHE_USE_SHARD, CachePathItem, CacheRefItem, CacheStatsItem, cacheStatsShardKey } from "./cache-items.ts";
import { INDEX_SHARDS, indexShards } from "./keys.ts";
import { firstPageOfShards } from "./index-walk.ts";
import { defineTable } from "./table.ts";

export const CachePaths = defineTable("CachePaths", CachePathItem);
export const CacheRefs = defineTable("CacheRefs", CacheRefItem);
export const CacheStats = defineTable("CacheStats", CacheStatsItem);

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const Presence = z.object({ storeHash: z.string(), lastUsedAt: z.string() });
export type Presence = z.infer<typeof Presence>;

/**
 * Which of `hashes` are published, with when each was last used: BatchGetItem pages of 100
 * keys, many at once (a bulk query of 10,000 paths is 100 requests in parallel, not one per path).
 * `consistent` reads them as a GetItem with ConsistentRead would.
 */
export async function presentPaths(hashes: readonly string[], options: { consistent?: boolean } = {}): Promise<Map<string, Presence>> {
  const table = tableName("CachePaths");
  const found = new Map<string, Presence>();
  await pMap(
    chunks([...new Set(hashes)], 100),
    async (page) => {
      let request: Record<string, unknown> | undefined = {
        [table]: { Keys: page.map((storeHash) => ({ storeHash })), ProjectionExpression: "storeHash, lastUsedAt", ...(options.consistent ? { ConsistentRead: true } : {}) },
      };
      for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
        if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
        const result = await dynamo().send(new BatchGetCommand({ RequestItems: request as never }));
        for (const raw of result.Responses?.[table] ?? []) {
          const item = CachePaths.parse(raw, Presence);
          found.set(item.storeHash, item);
        }
        request = result.UnprocessedKeys as typeof request;
      }
    },
    { concurrency: 16 },
  );
  return found;
}

export const getCachePath = (storeHash: string) => CachePaths.get({ storeHash });

/** Publishes a path; false when it is published already (the first upload stays). */
export const putCachePath = (item: CachePathItem) => CachePaths.put(item, { expression: "attribute_not_exists(storeHash)" });

/**
 * Marks paths used now, unless already marked since `freshAfter` (so a busy path costs one
 * write per period, not one per use). A path removed meanwhile stays removed: false for it.
 */
export async function touchPaths(hashes: readonly string[], now: Date, freshAfter: Date): Promise<Set<string>> {
  const touched = new Set<string>();
  await pMap(
    hashes,
    async (storeHash) => {
      const ok = await CachePaths.update(
        { storeHash },
        {
          UpdateExpression: "SET lastUsedAt = :now",
          ConditionExpression: "attribute_exists(storeHash) AND lastUsedAt < :fresh",
          ExpressionAttributeValues: { ":now": now.toISOString(), ":fresh": freshAfter.toISOString() },
        },
      );
      if (ok) touched.add(storeHash);
    },
    { concurrency: 16 },
  );
  return touched;
}

/** Paths not used since `before`, least recently used first, at most `limit`, after `cursor` when given. */
export async function leastRecentlyUsed(
  before: Date,
  limit: number,
  cursor?: { lastUsedAt: string; storeHash: string },
): Promise<{ items: CachePathItem[]; more: boolean }> {
  // Every shard from the same position: whatever precedes it was in an earlier merged page.
  const order = (p: CachePathItem) => `${p.lastUsedAt}\u0000${p.storeHash}`;
  return firstPageOfShards(indexShards(CACHE_USE_SHARD), limit, order, async (shard, max) => {
    const result = await dynamo().send(
      new QueryCommand({
        TableName: tableName("CachePaths"),
        IndexName: "byLastUsed",
        KeyConditionExpression: "useShard = :shard AND lastUsedAt < :before",
        ExpressionAttributeValues: { ":shard": shard, ":before": before.toISOString() },
        Limit: max,
        ...(cursor ? { ExclusiveStartKey: { useShard: shard, ...cursor } } : {}),
      }),
    );
    return { items: (result.Items ?? []).map((raw) => CachePaths.parse(raw)), more: result.LastEvaluatedKey !== undefined };
  });
}

export async function setCollectCursor(cursor: { lastUsedAt: string; storeHash: string } | undefined): Promise<void> {
  await CacheStats.update(
    { statsKey: CACHE_STATS_KEY },
    cursor ? { UpdateExpression: "SET collectCursor = :c", ExpressionAttributeValues: { ":c": cursor } } : { UpdateExpression: "REMOVE collectCursor" },
  );
}

/** Removes a path if it still was not used since `before`; false when it was (or is gone). */
export const deleteCachePath = (storeHash: string, before: Date) =>
  CachePaths.delete({ storeHash }, { expression: "lastUsedAt < :before", values: { ":before": before.toISOString() } });

/** Up to `limit` paths whose NAR file is `fileKey` (from an index: eventually consistent). */
export const pathsUsingFile = (fileKey: string, limit = 2) =>
  CachePaths.firstPage({ IndexName: "byFile", KeyConditionExpression: "fileKey = :file", ExpressionAttributeValues: { ":file": fileKey }, Limit: limit });

/** Records that `referrer` refers to each of `references` (idempotent). */
export async function putReferences(referrer: string, references: readonly string[]): Promise<void> {
  await writeBatches(references.map((reference) => ({ PutRequest: { Item: { reference, referrer } } })));
}

export async function deleteReferences(referrer: string, references: readonly string[]): Promise<void> {
  await writeBatches(references.map((reference) => ({ DeleteRequest: { Key: { reference, referrer } } })));
}

/** Up to `limit` paths recorded as referring to `reference`. */
export const referrersOf = (reference: string, limit: number) =>
  CacheRefs.firstPage({
    KeyConditionExpression: "#ref = :ref",
    ExpressionAttributeNames: { "#ref": "reference" },
    ExpressionAttributeValues: { ":ref": reference },
    Limit: limit,
  });

async function writeBatches(requests: readonly object[]): Promise<void> {
  const table = tableName("CacheRefs");
  for (const page of chunks(requests, 25)) {
    let request: Record<string, unknown[]> | undefined = { [table]: page as unknown[] };
    for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
      const result = await dynamo().send(new BatchWriteCommand({ RequestItems: request as never }));
      request = result.UnprocessedItems as typeof request;
    }
  }
}

/** Adds to the totals (negative to take away): one shard of them, at random, updated atomically. */
export async function addToStats(delta: { paths: number; fileBytes: number; narBytes: number }): Promise<void> {
  await CacheStats.update(
    { statsKey: cacheStatsShardKey(Math.floor(Math.random() * INDEX_SHARDS)) },
    {
      UpdateExpression: "ADD pathCount :p, fileBytes :f, narBytes :n",
      ExpressionAttributeValues: { ":p": delta.paths, ":f": delta.fileBytes, ":n": delta.narBytes },
    },
  );
}

export async function recordCollection(collection: { at: string; removedPaths: number; removedBytes: number }): Promise<void> {
  await CacheStats.update(
    { statsKey: CACHE_STATS_KEY },
    { UpdateExpression: "SET lastCollection = :c", ExpressionAttributeValues: { ":c": collection } },
  );
}

/** The collection's state and the totals summed over their shards (and the item's own, from before shards): one read. */
export async function cacheStats(): Promise<CacheStatsItem> {
  const keys = [CACHE_STATS_KEY, ...Array.from({ length: INDEX_SHARDS }, (_, shard) => cacheStatsShardKey(shard))];
  const items = await CacheStats.batchGet(keys.map((statsKey) => ({ statsKey })));
  const main = items.find((item) => item.statsKey === CACHE_STATS_KEY) ?? CacheStatsItem.parse({ statsKey: CACHE_STATS_KEY });
  const sum = (field: "pathCount" | "fileBytes" | "narBytes") => items.reduce((total, item) => total + item[field], 0);
  return { ...main, pathCount: sum("pathCount"), fileBytes: sum("fileBytes"), narBytes: sum("narBytes") };
}
