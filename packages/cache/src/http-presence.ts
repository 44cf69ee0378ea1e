/**
 * A plain Nix HTTP binary cache: `HEAD <hash>.narinfo` for every path, many at a time over
 * kept-alive connections. 404 and 403 mean missing, as in Nix (S3 answers 403 for absent
 * keys); other failures are retried once, then reported per path. The HEADs go through
 * node:http with a keep-alive agent rather than fetch: at thousands of requests the client's
 * CPU time per request decides the speed, and node:http spends about half of fetch's.
 */
import http from "node:http";
import https from "node:https";
import { basicAuthorization, cacheFetch } from "./cache-http.ts";
import { CacheUnreachableError } from "./errors.ts";
import { mapConcurrently } from "./concurrency.ts";
import { type CachePresence, type MissingResult, pathsByHash } from "./presence.ts";

export interface HttpPresenceOptions {
  /** Basic credentials (from the netrc entry for the cache's host, as Nix would use them). */
  credentials?: { login: string; password: string };
  /** Requests in flight at once (connections kept open); default 128. */
  concurrency?: number;
  timeoutMs?: number;
}

export function httpPresence(cache: string, baseUrl: string, options: HttpPresenceOptions = {}): CachePresence {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  const headers: Record<string, string> = options.credentials
    ? { authorization: basicAuthorization(options.credentials.login, options.credentials.password) }
    : {};
  const concurrency = options.concurrency ?? 128;
  const timeoutMs = options.timeoutMs ?? 30_000;
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
      const secure = base.startsWith("https:");
      const agent = new (secure ? https : http).Agent({ keepAlive: true, maxSockets: concurrency });
      try {
        await mapConcurrently([...byHash], concurrency, async ([hash, storePath]) => {
          const url = `${base}${hash}.narinfo`;
          let reason = "";
          for (let attempt = 0; attempt < 2; attempt++) {
            query.signal?.throwIfAborted();
            try {
              const status = await headStatus(url, { agent, headers, timeoutMs, signal: query.signal });
              if (status >= 200 && status < 300) return;
              if (status === 404 || status === 403) {
                missing.add(storePath);
                return;
              }
              reason = `HTTP ${status}`;
            } catch (err) {
              if (query.signal?.aborted) throw err;
              reason = (err as Error).message;
            }
          }
          missing.add(storePath);
          failed.set(storePath, reason);
        });
      } finally {
        agent.destroy();
      }
      return { missing, failed };
    },
  };
}

function headStatus(
  url: string,
  options: { agent: http.Agent; headers: Record<string, string>; timeoutMs: number; signal?: AbortSignal },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = (url.startsWith("https:") ? https : http).request(
      url,
      { method: "HEAD", agent: options.agent, headers: options.headers, timeout: options.timeoutMs, signal: options.signal },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer within ${options.timeoutMs / 1000} s`)));
    request.on("error", (err: NodeJS.ErrnoException) => reject(new Error(err.code === "ECONNREFUSED" ? "connection refused" : err.message)));
    request.end();
  });
}
