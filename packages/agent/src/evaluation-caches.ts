/**
 * What an evaluation needs to know from the binary caches, and what it ships to them
 * (docs/agent.md, "Evaluation"): which derivations must be built — their outputs neither valid
 * here nor in any cache, asked with one bulk query per cache instead of Nix's path-by-path
 * lookups — the `.drv` closure of those pushed to every push cache, and for each of them where
 * a builder on another machine can get what it needs (its `sources`).
 */
import { type BinaryCacheClient, CacheUnreachableError, type CachePresence, type PushResult, pushToCaches } from "@nimbus/cache";
import { cacheSource, type CacheReport, storeSource, substituterSource } from "@nimbus/protocol";
import { minimalNeeds } from "@nimbus/core";
import { type DerivationInfo, derivationsToBuild, type NixCall, showDerivations } from "./nix-closure.ts";
import { EvaluationFailure } from "./nix-walk.ts";
import type { PhaseTimings } from "./task-timings.ts";
import type { TaskCaches } from "./tasks/task-kind.ts";

/** The protocol's bounds on a derivation event's `sources`. */
const MAX_NEEDS = 256;

export interface CachePlan {
  /** The derivations that need building: an output neither valid in this store nor in any cache. */
  toBuild: Set<string>;
  /** What `nix show-derivation` said of them (and of the inputs looked at). */
  infos: Map<string, DerivationInfo>;
  /** For each derivation to build: the outputs valid only in this store that it needs, shipped with its `.drv` closure. */
  localOnly: Map<string, string[]>;
  /**
   * A derivation's `sources`: where a builder gets its `.drv` closure and every input that needs
   * no building, once `pushedTo` (cache sources) hold its `.drv` closure and its `localOnly` outputs.
   */
  sourcesOf(drv: string, pushedTo: readonly string[]): string[][];
  /** The caches that could not be asked. */
  reports: CacheReport[];
}

/** What needs building and where what its builders need is; pushes nothing (CachePusher does). */
export async function planWithCaches(roots: readonly string[], call: NixCall, caches: TaskCaches, timings?: PhaseTimings): Promise<CachePlan> {
  // What this store lacks: the dry run with no substituter at all (the caches are asked below, in bulk).
  const missing = await derivationsToBuild(roots, { ...call, optionArgs: [...call.optionArgs, "--option", "substituters", ""] });
  timings?.mark("dryRun");
  const infos = await showDerivations([...missing], call);
  // Inputs of those that are valid here: a builder elsewhere may need their outputs too. With
  // no cache to ask or push to, only this store has them: nothing more to learn of them.
  const anyCache = caches.clients.length > 0 || caches.machine.length > 0;
  const frontier = new Set<string>();
  for (const drv of missing) for (const input of infos.get(drv)?.inputDrvs ?? []) if (!missing.has(input)) frontier.add(input);
  if (frontier.size > 0 && anyCache) for (const [drv, info] of await showDerivations([...frontier], call)) infos.set(drv, info);

  const outputsOf = (drv: string, names?: readonly string[]) => {
    const outputs = infos.get(drv)?.outputs ?? {};
    const wanted = names && names.length > 0 ? names.filter((n) => n in outputs) : Object.keys(outputs);
    return wanted.map((n) => outputs[n]!);
  };
  const asked = [...new Set([...missing, ...frontier].flatMap((drv) => outputsOf(drv)))];
  const reports: CacheReport[] = [];
  timings?.mark("showDerivations");
  const holders = await whoHolds(asked, caches, call.signal, reports);
  timings?.mark("askCaches");

  const toBuild = new Set<string>();
  const stack = roots.filter((drv) => missing.has(drv));
  const seen = new Set<string>();
  while (stack.length > 0) {
    const drv = stack.pop()!;
    if (seen.has(drv)) continue;
    seen.add(drv);
    const outputs = outputsOf(drv);
    if (outputs.length > 0 && outputs.every((p) => holders.has(p))) continue;
    toBuild.add(drv);
    for (const input of infos.get(drv)?.inputDrvs ?? []) if (missing.has(input)) stack.push(input);
  }

  // Outputs valid only here that a build needs: shipped too, or only this store could build on them.
  const localOnly = new Map<string, string[]>();
  for (const drv of toBuild) {
    const info = infos.get(drv)!;
    const needed = new Set<string>();
    for (const input of info.inputDrvs) {
      if (!frontier.has(input)) continue;
      for (const p of outputsOf(input, info.inputOutputs[input])) if (!holders.has(p)) needed.add(p);
    }
    if (needed.size > 0) localOnly.set(drv, [...needed]);
  }

  const self = storeSource(caches.storeId);
  const sourcesOf = (drv: string, pushedTo: readonly string[]): string[][] => {
    const info = infos.get(drv)!;
    const needs: string[][] = [[self, ...pushedTo]];
    for (const input of info.inputDrvs) {
      if (toBuild.has(input)) continue;
      const outputs = outputsOf(input, info.inputOutputs[input]);
      // Outputs not looked up (no cache to ask): this store has them, and only it is known to.
      if (outputs.length === 0) needs.push([self]);
      for (const p of outputs) {
        const here = frontier.has(input) ? [self, ...(holders.has(p) ? [] : pushedTo)] : [];
        const need = [...(holders.get(p) ?? []), ...here];
        needs.push(need.length > 0 ? need : [self]);
      }
    }
    const minimal = minimalNeeds(needs);
    if (minimal.length > MAX_NEEDS) {
      throw new EvaluationFailure(`derivation ${drv} needs inputs from ${minimal.length} different combinations of caches; Nimbus reports at most ${MAX_NEEDS}`);
    }
    return minimal;
  };
  return { toBuild, infos, localOnly, sourcesOf, reports };
}

/**
 * Pushes `.drv` closures, and the outputs valid only here that they need, to every push cache,
 * piece by piece (push-chunks.ts). A cache whose push fails is left out of every later piece:
 * it is reported failed, and only the caches that took every piece so far hold what a piece's
 * derivations need.
 */
export class CachePusher {
  private readonly results: PushResult[] = [];
  private readonly failed = new Set<string>();
  private readonly shipped = new Set<string>();

  constructor(
    private readonly plan: Pick<CachePlan, "localOnly" | "reports">,
    private readonly caches: TaskCaches,
    private readonly options: { env: NodeJS.ProcessEnv | undefined; signal: AbortSignal; timings?: PhaseTimings },
  ) {}

  /** The caches (as sources) that hold everything pushed so far. */
  get holding(): string[] {
    return this.pushing().map((c) => cacheSource(c.cache));
  }

  /** Whether there is anything to push to: without a push cache, every piece is already where it can be. */
  get pushes(): boolean {
    return this.pushing().length > 0;
  }

  /** Pushes the `.drv` closure of `drvs` and what they need from this store alone; then returns `holding`. */
  async push(drvs: readonly string[]): Promise<string[]> {
    const outputs = [...new Set(drvs.flatMap((drv) => this.plan.localOnly.get(drv) ?? []))].filter((p) => !this.shipped.has(p));
    await this.round(drvs, "derivations", "pushDerivations");
    await this.round(outputs, "outputs", "pushOutputs");
    for (const p of outputs) this.shipped.add(p);
    return this.holding;
  }

  /** One report per cache: every piece's pushes together, after the caches that could not be asked. */
  reports(): CacheReport[] {
    return [...this.plan.reports, ...mergePushes(this.results)];
  }

  private pushing() {
    return this.caches.clients.filter((c) => c.push && !this.failed.has(c.cache));
  }

  private async round(paths: readonly string[], what: "derivations" | "outputs", phase: string): Promise<void> {
    if (paths.length === 0 || !this.pushes) return;
    const { env, signal, timings } = this.options;
    const started = performance.now();
    const results = await pushToCaches(this.pushing(), paths, { what, env, signal, pathInfos: this.caches.pathInfos });
    if (signal.aborted) throw signal.reason;
    timings?.add(phase, performance.now() - started);
    for (const result of results) if (result.status === "failed") this.failed.add(result.cache);
    this.results.push(...results);
  }
}

/** Asks every cache and machine substituter about `paths` at once: path → the sources that hold it. */
async function whoHolds(paths: readonly string[], caches: TaskCaches, signal: AbortSignal, reports: CacheReport[]): Promise<Map<string, string[]>> {
  const holders = new Map<string, string[]>();
  if (paths.length === 0) return holders;
  const asking: Array<{ presence: CachePresence | BinaryCacheClient; source: string }> = [
    ...caches.clients.map((client) => ({ presence: client, source: cacheSource(client.cache) })),
    ...caches.machine.map((presence) => ({ presence, source: substituterSource(presence.cache) })),
  ];
  await Promise.all(
    asking.map(async ({ presence, source }) => {
      try {
        const result = await presence.missing(paths, { signal });
        for (const p of paths) if (!result.missing.has(p)) holders.set(p, [...(holders.get(p) ?? []), source]);
        if (result.failed.size > 0) {
          const [first] = result.failed;
          reports.push({ cache: presence.cache, status: "unreachable", reason: `${result.failed.size} of ${paths.length} lookups failed (${first![0]}: ${first![1]}); counted as missing` });
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (!(err instanceof CacheUnreachableError)) throw err;
        reports.push({ cache: presence.cache, status: "unreachable", reason: err.reason });
      }
    }),
  );
  return holders;
}

/** One report per cache: its `.drv` and output pushes together; failed if one of them failed. */
function mergePushes(results: readonly PushResult[]): CacheReport[] {
  const byCache = new Map<string, CacheReport>();
  for (const result of results) {
    const before = byCache.get(result.cache);
    if (result.status === "failed") {
      if (before?.status !== "failed") byCache.set(result.cache, { cache: result.cache, status: "failed", reason: result.reason.slice(0, 2000) });
    } else if (before === undefined) {
      byCache.set(result.cache, { cache: result.cache, status: "pushed", paths: result.pushed, alreadyPresent: result.alreadyPresent });
    } else if (before.status === "pushed") {
      byCache.set(result.cache, { ...before, paths: before.paths + result.pushed, alreadyPresent: before.alreadyPresent + result.alreadyPresent });
    }
  }
  return [...byCache.values()];
}
