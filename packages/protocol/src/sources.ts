import * as z from "zod";

/**
 * Where something a build needs can be had (docs/agent.md, "Binary caches"): a cache from an
 * agent's binary-caches.json by name (`cache:shared`), one of an agent's other substituters
 * by URL (`substituter:https://cache.nixos.org`), or an agent's own Nix store by its id
 * (`store:builder-1/3fa9c2d14b7e`). The service sends a derivation only to an agent that can
 * reach one source of every need (core `canObtain`).
 */
export const Source = z
  .string()
  .max(1100)
  .regex(/^(cache:[A-Za-z0-9][A-Za-z0-9._-]{0,63}|substituter:\S{1,1024}|store:[^\s/]{1,255}\/[0-9a-f]{12})$/, "cache:<name>, substituter:<url> or store:<id>");
export type Source = z.infer<typeof Source>;

/** The places one thing (the .drv closure, one input's outputs) can be had from: any one will do. */
export const Need = z.array(Source).min(1).max(64);
export type Need = z.infer<typeof Need>;

/** A cache's name in binary-caches.json: the same name on every agent. */
export const CacheName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a cache name from binary-caches.json");

/** Which Nix store an agent builds in: `<hostname>/<12 hex>`; agents with the same id share one store. */
export const StoreId = z.string().regex(/^[^\s/]{1,255}\/[0-9a-f]{12}$/, "<hostname>/<12 hex digits>");

export const cacheSource = (name: string): Source => `cache:${name}`;
export const storeSource = (storeId: string): Source => `store:${storeId}`;
/** Substituter URLs are compared without trailing slashes (Nix prints `https://cache.nixos.org/`). */
export const normalizeSubstituter = (url: string): string => url.replace(/\/+$/, "");
export const substituterSource = (url: string): Source => `substituter:${normalizeSubstituter(url)}`;

/**
 * What became of one cache during a task: a push done (`paths` uploaded, the rest already
 * there) or failed, or a cache that could not be asked what it holds. `cache` is the cache's
 * name, or the URL of a machine substituter.
 */
export const CacheReport = z.discriminatedUnion("status", [
  z.strictObject({
    cache: z.string().min(1).max(1024),
    status: z.literal("pushed"),
    paths: z.number().int().min(0),
    alreadyPresent: z.number().int().min(0),
  }),
  z.strictObject({ cache: z.string().min(1).max(1024), status: z.literal("failed"), reason: z.string().min(1).max(2000) }),
  z.strictObject({ cache: z.string().min(1).max(1024), status: z.literal("unreachable"), reason: z.string().min(1).max(2000) }),
]);
export type CacheReport = z.infer<typeof CacheReport>;

/** One line for people: what went wrong with a cache, or undefined when nothing did. */
export function cacheProblem(report: CacheReport): string | undefined {
  if (report.status === "pushed") return undefined;
  return report.status === "failed" ? `push to ${report.cache} failed: ${report.reason}` : `${report.cache} could not be asked: ${report.reason}`;
}
