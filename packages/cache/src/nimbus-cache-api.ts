/**
 * The built-in cache's bulk presence endpoint, `POST {apiBaseUrl}/cache/missing` (the service
 * implements it): `{storePaths}` → `{missing}`, the subset of storePaths the cache lacks.
 * Agents authenticate with their session (the caller supplies the Authorization header).
 */
import { z } from "zod";
import { cacheFetchOk } from "./cache-http.ts";
import { chunk } from "./concurrency.ts";
import { CacheUnreachableError } from "./errors.ts";
import { type CachePresence, type MissingResult } from "./presence.ts";
import { StorePath } from "./store-path.ts";

/** 10,000 paths of ≤ 260 bytes stay well under a Lambda request's 6 MB. */
export const CACHE_MISSING_MAX_PATHS = 10_000;

export const CacheMissingRequest = z.strictObject({ storePaths: z.array(StorePath).min(1).max(CACHE_MISSING_MAX_PATHS) });
export type CacheMissingRequest = z.infer<typeof CacheMissingRequest>;

export const CacheMissingResponse = z.strictObject({ missing: z.array(StorePath).max(CACHE_MISSING_MAX_PATHS) });
export type CacheMissingResponse = z.infer<typeof CacheMissingResponse>;

export interface NimbusPresenceOptions {
  /** The service's HTTP API base URL, without a trailing slash. */
  apiBaseUrl: string;
  /** The Authorization header value for this request (the agent's session credential). */
  authorization: () => string | Promise<string>;
  /** Name used in messages; default "nimbus". */
  cache?: string;
}

export function nimbusPresence(options: NimbusPresenceOptions): CachePresence {
  const cache = options.cache ?? "nimbus";
  const url = `${options.apiBaseUrl.replace(/\/+$/, "")}/cache/missing`;
  return {
    cache,
    async missing(storePaths, query = {}): Promise<MissingResult> {
      const missing = new Set<string>();
      for (const part of chunk([...new Set(storePaths)], CACHE_MISSING_MAX_PATHS)) {
        const body = CacheMissingRequest.parse({ storePaths: part });
        const response = await cacheFetchOk(cache, url, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: await options.authorization() },
          body: JSON.stringify(body),
          signal: query.signal,
        });
        const parsed = CacheMissingResponse.safeParse(await response.json().catch(() => undefined));
        if (!parsed.success) throw new CacheUnreachableError(cache, "the answer to POST /cache/missing is not {missing: [store paths]}");
        const asked = new Set(part);
        for (const storePath of parsed.data.missing) if (asked.has(storePath)) missing.add(storePath);
      }
      return { missing, failed: new Map() };
    },
  };
}
