/**
 * Attic's bulk query, as its published API defines it (attic `api/v1/get_missing_paths.rs`):
 * `POST /_api/v1/get-missing-paths` with `{cache, store_path_hashes}` answers
 * `{missing_paths}`. It needs a token with push permission.
 */
import { z } from "zod";
import { cacheFetchOk } from "./cache-http.ts";
import { chunk } from "./concurrency.ts";
import { CacheUnreachableError } from "./errors.ts";
import { type CachePresence, type MissingResult, missingFromHashes, pathsByHash } from "./presence.ts";

/** Attic sets no limit; a bound keeps one request's body in the low megabytes. */
const ATTIC_BULK_LIMIT = 20_000;

export const AtticGetMissingPathsRequest = z.object({ cache: z.string(), store_path_hashes: z.array(z.string()) });
export const AtticGetMissingPathsResponse = z.object({ missing_paths: z.array(z.string()) });

export function atticPresence(cache: string, endpoint: string, atticCache: string, token: string | undefined): CachePresence {
  return {
    cache,
    async missing(storePaths, query = {}): Promise<MissingResult> {
      const byHash = pathsByHash(storePaths);
      const missingHashes: string[] = [];
      for (const hashes of chunk([...byHash.keys()], ATTIC_BULK_LIMIT)) {
        const response = await cacheFetchOk(cache, `${endpoint}_api/v1/get-missing-paths`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify(AtticGetMissingPathsRequest.parse({ cache: atticCache, store_path_hashes: hashes })),
          signal: query.signal,
        });
        const parsed = AtticGetMissingPathsResponse.safeParse(await response.json().catch(() => undefined));
        if (!parsed.success) throw new CacheUnreachableError(cache, "Attic's get-missing-paths answer has no missing_paths list");
        missingHashes.push(...parsed.data.missing_paths);
      }
      return missingFromHashes(byHash, missingHashes);
    },
  };
}
