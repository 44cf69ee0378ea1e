/**
 * A build's result that carries its outputs' publication to the built-in cache (docs/cache.md,
 * "Publication with the result"): which of its claims the service may publish, and the cache
 * report the verdicts make of the agent's.
 */
import type { CacheReport, UploadedPath, UploadVerdict } from "@nimbus/protocol";

/**
 * The claims a build's result may publish: its outputs, and paths their claims refer to, from
 * one claim to the next — its outputs' closure, as far as it travels with it. Any other claim is
 * `foreign`: a result publishes nothing that is not its outputs' (a `cache-upload-complete` is
 * the way for other paths, checked the same).
 */
export function outputClaims(outputs: Readonly<Record<string, string>> | undefined, claims: readonly UploadedPath[]): { own: UploadedPath[]; foreign: UploadedPath[] } {
  const byPath = new Map(claims.map((c) => [c.storePath, c]));
  const reached = new Set<string>();
  const pending = Object.values(outputs ?? {}).filter((p) => byPath.has(p));
  while (pending.length > 0) {
    const path = pending.pop()!;
    if (reached.has(path)) continue;
    reached.add(path);
    for (const reference of byPath.get(path)!.references) if (byPath.has(reference) && !reached.has(reference)) pending.push(reference);
  }
  return { own: claims.filter((c) => reached.has(c.storePath)), foreign: claims.filter((c) => !reached.has(c.storePath)) };
}

/**
 * The built-in cache's report once the claims a result carried were published: failed with
 * `refusal` (the first refused path, in the words an agent's own completion uses) when one was
 * refused; else the agent's `pushed` report, its paths found published meanwhile counted as
 * already there. An agent's `failed` report stays as it is.
 */
export function publishedReport(cache: string, reported: CacheReport | undefined, verdicts: readonly UploadVerdict[], refusal: string | undefined): CacheReport {
  if (refusal !== undefined) return { cache, status: "failed", reason: refusal.slice(0, 2000) };
  const present = verdicts.filter((v) => v.status === "present").length;
  if (reported === undefined) return { cache, status: "pushed", paths: verdicts.length - present, alreadyPresent: present };
  if (reported.status !== "pushed") return reported;
  return { ...reported, paths: Math.max(0, reported.paths - present), alreadyPresent: reported.alreadyPresent + present };
}
