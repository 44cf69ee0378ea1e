/**
 * Cachix's bulk narinfo query, as its published API defines it (cachix-api, `narinfoBulk`):
 * `POST /api/v1/cache/{name}/narinfo` with a JSON list of store path hashes answers the list
 * of those missing. The Cachix client sends at most 32,768 hashes a request (1 MB); so do we.
 */
import { z } from "zod";
import { cacheFetchOk } from "./cache-http.ts";
import { chunk } from "./concurrency.ts";
import { CacheUnreachableError } from "./errors.ts";
import { type CachePresence, type MissingResult, missingFromHashes, pathsByHash } from "./presence.ts";

export const CACHIX_BULK_LIMIT = 32_768;

export const CachixNarinfoBulkRequest = z.array(z.string());
export const CachixNarinfoBulkResponse = z.array(z.string());

export function cachixPresence(cache: string, apiBase: string, authToken: string | undefined): CachePresence {
  return {
    cache,
    async missing(storePaths, query = {}): Promise<MissingResult> {
      const byHash = pathsByHash(storePaths);
      const missingHashes: string[] = [];
      for (const hashes of chunk([...byHash.keys()], CACHIX_BULK_LIMIT)) {
        const response = await cacheFetchOk(cache, `${apiBase}cache/${encodeURIComponent(cache)}/narinfo`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(authToken ? { authorization: `Bearer ${authToken}` } : {}) },
          body: JSON.stringify(hashes),
          signal: query.signal,
        });
        const parsed = CachixNarinfoBulkResponse.safeParse(await response.json().catch(() => undefined));
        if (!parsed.success) throw new CacheUnreachableError(cache, "Cachix's bulk narinfo answer is not a list of hashes");
        missingHashes.push(...parsed.data);
      }
      return missingFromHashes(byHash, missingHashes);
    },
  };
}
