/**
 * The built-in cache's knobs (docs/cache.md), read from the environment like the timing knobs
 * (sst.config.ts in AWS, the local runtime's options locally), with these defaults.
 */
export interface CacheSettings {
  /** A path unused for this long, that no other cached path refers to, is removed by the sweeper. */
  retentionMs: number;
  /** Paths the sweeper looks at per run (it runs every minute). */
  collectBatch: number;
  /** NAR files up to this size are read back and hashed by the handler that publishes them. */
  verifyReadBytes: number;
  /** How long a presigned URL works. */
  urlLifetimeSeconds: number;
}

const DAY_MS = 24 * 3600 * 1000;

const ENV = {
  retentionMs: "NIMBUS_CACHE_RETENTION_DAYS",
  collectBatch: "NIMBUS_CACHE_COLLECT_BATCH",
  verifyReadBytes: "NIMBUS_CACHE_VERIFY_READ_BYTES",
  urlLifetimeSeconds: "NIMBUS_CACHE_URL_SECONDS",
} as const;

/** The environment variable of each knob, for whoever sets them. */
export const CACHE_ENV = ENV;

/** A NAR file `nix copy` PUTs through the API: Lambda takes requests of 6 MB, and binary bodies arrive base64-encoded. */
export const MAX_PUT_NAR_BYTES = 4 * 1024 * 1024;

export function cacheSettings(): CacheSettings {
  const read = (name: string, fallback: number) => {
    const raw = process.env[name];
    const value = raw === undefined || raw === "" ? NaN : Number(raw);
    return Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  return {
    retentionMs: read(ENV.retentionMs, 30) * DAY_MS,
    collectBatch: Math.max(1, Math.floor(read(ENV.collectBatch, 200))),
    verifyReadBytes: read(ENV.verifyReadBytes, 16 * 1024 * 1024),
    urlLifetimeSeconds: Math.min(Math.max(60, read(ENV.urlLifetimeSeconds, 900)), 7 * 24 * 3600),
  };
}
