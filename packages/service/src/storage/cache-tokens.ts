/** Tokens scoped to the built-in cache (docs/cache.md), stored hashed like every token. */
import { CacheTokenItem } from "./cache-items.ts";
import { defineTable } from "./table.ts";

export const CacheTokens = defineTable("CacheTokens", CacheTokenItem);

export const getCacheToken = (tokenId: string) => CacheTokens.get({ tokenId });
export const putCacheToken = (item: CacheTokenItem) => CacheTokens.put(item, { expression: "attribute_not_exists(tokenId)" });
export const listCacheTokens = () => CacheTokens.scan();

/** Marks a token revoked (idempotent); undefined when there is no such token. */
export const revokeCacheToken = (tokenId: string, now: Date) =>
  CacheTokens.updateReturning(
    { tokenId },
    {
      UpdateExpression: "SET revokedAt = if_not_exists(revokedAt, :now)",
      ConditionExpression: "attribute_exists(tokenId)",
      ExpressionAttributeValues: { ":now": now.toISOString() },
    },
    "ALL_NEW",
  );
