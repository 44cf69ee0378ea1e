/**
 * Where each configured cache is read from. Cachix's hosts are fixed by Cachix (reads at
 * `https://<name>.cachix.org`, the API at `https://cachix.org/api/v1/`); tests and
 * self-hosted stand-ins override them through `CacheServices`.
 */
import type { CacheConfig } from "./binary-caches.ts";
import { formatNetrc, type NetrcEntry } from "./netrc.ts";

export interface CacheServices {
  /** Cachix's API origin, default "https://cachix.org" (the API is under /api/v1/). */
  cachixApiUrl?: string;
  /** Where a Cachix cache is read as a Nix binary cache; default `https://<name>.cachix.org`. */
  cachixCacheUrl?: (name: string) => string;
}

export const CACHIX_API_URL = "https://cachix.org";

export function cachixApiBase(services: CacheServices = {}): string {
  return `${(services.cachixApiUrl ?? CACHIX_API_URL).replace(/\/+$/, "")}/api/v1/`;
}

/** The URL Nix substitutes from (a `substituters` entry), with no trailing slash. */
export function substituterUrl(cache: CacheConfig, services: CacheServices = {}): string {
  switch (cache.kind) {
    case "NixCache":
      return cache.store.uri;
    case "CachixCache":
      return (services.cachixCacheUrl?.(cache.name) ?? `https://${cache.name}.cachix.org`).replace(/\/+$/, "");
    case "AtticCache":
      return `${cache.endpoint}${cache.cache}`;
  }
}

/**
 * netrc entries for the caches that need credentials to be read: Cachix (Hercules writes the
 * same line: login "authtoken") and Attic (which reads the token from the password).
 */
export function netrcEntriesFor(caches: readonly CacheConfig[], services: CacheServices = {}): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  for (const cache of caches) {
    if (cache.kind === "CachixCache" && cache.authToken !== undefined) {
      entries.push({ machine: new URL(substituterUrl(cache, services)).hostname, login: "authtoken", password: cache.authToken });
    }
    if (cache.kind === "AtticCache" && cache.token !== undefined) {
      entries.push({ machine: new URL(cache.endpoint).hostname, login: "attic", password: cache.token });
    }
  }
  return entries;
}

/** The netrc text for Nix: the machine's own netrc (if any) first, then the caches' entries. */
export function netrcFor(caches: readonly CacheConfig[], services: CacheServices = {}, machineNetrc = ""): string {
  const ours = formatNetrc(netrcEntriesFor(caches, services));
  return machineNetrc.trim() === "" ? ours : `${machineNetrc.trimEnd()}\n${ours}`;
}
