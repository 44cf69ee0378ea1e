/**
 * A plain Nix HTTP binary cache: `HEAD <hash>.narinfo` for every path, many at a time over
 * kept-alive connections (Node's fetch pools them). 404 and 403 mean missing, as in Nix (S3
 * answers 403 for absent keys); other failures are retried once, then reported per path.
 */
import { basicAuthorization, cacheFetch } from "./cache-http.ts";
import { CacheUnreachableError } from "./errors.ts";
import { mapConcurrently } from "./concurrency.ts";
import { type CachePresence, type MissingResult, pathsByHash } from "./presence.ts";

export interface HttpPresenceOptions {
  /** Basic credentials (from the netrc entry for the cache's host, as Nix would use them). */
  credentials?: { login: string; password: string };
  /** Requests in flight at once; default 64. */
  concurrency?: number;
  timeoutMs?: number;
}

export function httpPresence(cache: string, baseUrl: string, options: HttpPresenceOptions = {}): CachePresence {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  const headers: Record<string, string> = options.credentials
    ? { authorization: basicAuthorization(options.credentials.login, options.credentials.password) }
    : {};
  const concurrency = options.concurrency ?? 64;
  return {
    cache,
    async missing(storePaths, query = {}): Promise<MissingResult> {
      const byHash = pathsByHash(storePaths);
      const missing = new Set<string>();
      const failed = new Map<string, string>();
      if (byHash.size === 0) return { missing, failed };
      // One request first: an unreachable cache or refused credentials fail once, clearly.
      const info = await cacheFetch(cache, `${base}nix-cache-info`, { headers, signal: query.signal, timeoutMs: options.timeoutMs });
      await info.arrayBuffer();
      if (info.status === 401 || info.status === 403) {
        throw new CacheUnreachableError(cache, `HTTP ${info.status} for ${base}nix-cache-info — check the credentials for this cache (netrc)`);
      }
      if (info.status >= 500) throw new CacheUnreachableError(cache, `HTTP ${info.status} for ${base}nix-cache-info`);
      await mapConcurrently([...byHash], concurrency, async ([hash, storePath]) => {
        const url = `${base}${hash}.narinfo`;
        let reason = "";
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            const response = await cacheFetch(cache, url, { method: "HEAD", headers, signal: query.signal, timeoutMs: options.timeoutMs });
            if (response.ok) return;
            if (response.status === 404 || response.status === 403) {
              missing.add(storePath);
              return;
            }
            reason = `HTTP ${response.status}`;
          } catch (err) {
            if (query.signal?.aborted) throw err;
            reason = (err as Error).message;
          }
        }
        missing.add(storePath);
        failed.set(storePath, reason);
      });
      return { missing, failed };
    },
  };
}
