/**
 * Which store paths a cache lacks, asked in bulk: one query per cache (Cachix's and Attic's
 * bulk endpoints, Nimbus's `POST /cache/missing`, one directory listing for file://), or
 * narinfo requests many at a time over kept-alive connections for plain HTTP caches —
 * never Nix's one path at a time.
 */
import { storePathHash } from "./store-path.ts";

export interface MissingResult {
  missing: Set<string>;
  /**
   * Paths whose lookup failed although the cache answered others (after one retry), with the
   * reason; they are also in `missing`, so a caller builds or pushes them rather than assume.
   */
  failed: Map<string, string>;
}

export interface QueryOptions {
  signal?: AbortSignal;
}

export interface CachePresence {
  /** The cache's name in binary-caches.json. */
  readonly cache: string;
  /** Throws CacheUnreachableError when the cache cannot be asked at all. */
  missing(storePaths: readonly string[], options?: QueryOptions): Promise<MissingResult>;
}

/** The paths by their hash part (what caches index them by); throws on a path outside /nix/store. */
export function pathsByHash(storePaths: readonly string[]): Map<string, string> {
  const byHash = new Map<string, string>();
  for (const storePath of storePaths) byHash.set(storePathHash(storePath), storePath);
  return byHash;
}

/** Turns a list of missing hashes from a bulk endpoint into the result, ignoring hashes that were not asked about. */
export function missingFromHashes(byHash: ReadonlyMap<string, string>, missingHashes: Iterable<string>): MissingResult {
  const missing = new Set<string>();
  for (const hash of missingHashes) {
    const storePath = byHash.get(hash);
    if (storePath !== undefined) missing.add(storePath);
  }
  return { missing, failed: new Map() };
}
