/**
 * The built-in cache's stored items (docs/cache.md), one zod schema each, beside items.ts:
 * the index of published paths, the references between them, cache-scoped tokens, and the
 * cache's totals.
 */
import { CacheAccess } from "@nimbus/protocol";
import { z } from "zod";

/** CachePaths.useShard, always (one of its shards, storage/keys.ts `indexShard`): the byLastUsed index lists every path, least recently used first. */
export const CACHE_USE_SHARD = "u";
/** CacheStats.statsKey of the item with the collection's state (and the totals written before they were sharded). */
export const CACHE_STATS_KEY = "cache";
/**
 * CacheStats.statsKey of a shard of the totals: every completion and collection adds to one at
 * random, so no single item takes every cache write of a fleet; a read sums them all.
 */
export const cacheStatsShardKey = (shard: number) => `${CACHE_STATS_KEY}#${shard}`;

/** A published path: its narinfo's fields (but the signature, made when it is served) and its NAR file. */
export const CachePathItem = z.object({
  /** The 32-character hash part of the store path: `<hash>.narinfo`. */
  storeHash: z.string(),
  storePath: z.string(),
  /** The NAR file's key in the bucket, also the narinfo's URL (`nar/<file hash>.nar.zst`). */
  fileKey: z.string(),
  compression: z.string(),
  fileHash: z.string(),
  fileSize: z.number(),
  narHash: z.string(),
  narSize: z.number(),
  /** Full store paths. */
  references: z.array(z.string()),
  deriver: z.string().optional(),
  ca: z.string().optional(),
  createdAt: z.string(),
  /** Published, or asked for by an evaluation or a reader since: what retention measures. */
  lastUsedAt: z.string(),
  useShard: z.string(),
});
export type CachePathItem = z.infer<typeof CachePathItem>;

/** `referrer` (a store hash) refers to `reference`: the reference stays while the referrer does. */
export const CacheRefItem = z.object({ reference: z.string(), referrer: z.string() });
export type CacheRefItem = z.infer<typeof CacheRefItem>;

/** A token scoped to the built-in cache; only its secret's hash is stored. */
export const CacheTokenItem = z.object({
  tokenId: z.string(),
  secretHash: z.string(),
  name: z.string(),
  access: CacheAccess,
  createdAt: z.string(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
});
export type CacheTokenItem = z.infer<typeof CacheTokenItem>;

export const CacheStatsItem = z.object({
  statsKey: z.union([z.literal(CACHE_STATS_KEY), z.string().regex(/^cache#\d+$/)]),
  pathCount: z.number().default(0),
  fileBytes: z.number().default(0),
  narBytes: z.number().default(0),
  lastCollection: z.object({ at: z.string(), removedPaths: z.number(), removedBytes: z.number() }).optional(),
  /** Where the next collection goes on in the byLastUsed index (paths kept for their referrers are passed over). */
  collectCursor: z.object({ lastUsedAt: z.string(), storeHash: z.string() }).optional(),
});
export type CacheStatsItem = z.infer<typeof CacheStatsItem>;
