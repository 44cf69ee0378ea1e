/**
 * The Nix settings that make an agent's Nix read the configured caches: the machine's own
 * substituters plus every configured cache (trusting their public keys), as Hercules does —
 * or, for tests and offline machines, only the configured caches.
 */
import type { CacheConfig } from "./binary-caches.ts";
import { type CacheServices, substituterUrl } from "./cache-endpoints.ts";

export interface SubstituterOptions {
  /** Keep the machine's `substituters` from nix.conf (default true). */
  machineSubstituters?: boolean;
  /** A netrc file with the caches' credentials (see netrcFor and writePrivateNetrc). */
  netrcFile?: string;
  services?: CacheServices;
}

/**
 * Settings in the order they must be applied: `substituters = ""` (when the machine's are off)
 * comes before the `extra-` settings that add to it.
 */
export function substituterSettings(caches: readonly CacheConfig[], options: SubstituterOptions = {}): Array<[string, string]> {
  const settings: Array<[string, string]> = [];
  if (options.machineSubstituters === false) settings.push(["substituters", ""]);
  const urls = caches.map((c) => substituterUrl(c, options.services));
  const keys = [...new Set(caches.flatMap((c) => c.publicKeys.map((k) => k.text)))];
  if (urls.length > 0) settings.push(["extra-substituters", urls.join(" ")]);
  if (keys.length > 0) settings.push(["extra-trusted-public-keys", keys.join(" ")]);
  if (options.netrcFile !== undefined) settings.push(["netrc-file", options.netrcFile]);
  return settings;
}

/** `--option NAME VALUE` arguments for the settings above. */
export function substituterArgs(caches: readonly CacheConfig[], options: SubstituterOptions = {}): string[] {
  return substituterSettings(caches, options).flatMap(([name, value]) => ["--option", name, value]);
}
