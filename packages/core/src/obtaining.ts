/**
 * Whether an agent can obtain what a build needs (docs/agent.md, "Binary caches"): agents do
 * not share a Nix store, so a derivation goes only to an agent that can get its `.drv` closure
 * and every input's outputs — from a cache it reads, a substituter its Nix uses, or its own
 * store. A need lists the places one thing can be had (any one will do); an agent can obtain
 * a build when it reaches one place of every need. Pure, like matching.ts beside it.
 */
import type { AgentInfo } from "@nimbus/protocol";
import { canBuild, capabilitiesOf, type BuildRequirements } from "./matching.ts";

/** What an agent reaches, from its hello. */
export interface Reach {
  /** The Nix store it builds in; absent when it did not say. */
  storeId?: string;
  /** Names of the configured caches it reads. */
  caches: readonly string[];
  /** Substituter URLs its Nix uses (trailing slashes ignored). */
  substituters: readonly string[];
}

export type ReachInfo = Pick<AgentInfo, "storeId" | "caches" | "substituters">;

const trimSlashes = (url: string) => url.replace(/\/+$/, "");

export const reachOf = (agent: ReachInfo): Reach => ({
  ...(agent.storeId === undefined ? {} : { storeId: agent.storeId }),
  caches: (agent.caches ?? []).filter((c) => c.pull).map((c) => c.name),
  substituters: agent.substituters.map(trimSlashes),
});

/** Whether the agent can get something from `source` (`cache:<name>`, `substituter:<url>`, `store:<id>`). */
export function reaches(reach: Reach, source: string): boolean {
  const colon = source.indexOf(":");
  const kind = source.slice(0, colon);
  const where = source.slice(colon + 1);
  switch (kind) {
    case "cache":
      return reach.caches.includes(where);
    case "substituter":
      return reach.substituters.includes(trimSlashes(where));
    case "store":
      return reach.storeId !== undefined && reach.storeId === where;
    default:
      return false;
  }
}

/** The needs the agent cannot meet: none when it can obtain everything. */
export const unmetNeeds = (reach: Reach, needs: readonly (readonly string[])[]): (readonly string[])[] =>
  needs.filter((need) => !need.some((source) => reaches(reach, source)));

export const canObtain = (reach: Reach, needs: readonly (readonly string[])[]): boolean => unmetNeeds(reach, needs).length === 0;

/**
 * A build's needs: those the evaluation reported (`.drv` closure, inputs that needed no
 * building), plus one per input Nimbus built — where its outputs are. An input whose sources
 * are unknown (built before Nimbus recorded them) adds nothing. Duplicates and needs implied by
 * a smaller one (a superset of another need) are dropped: they can only be met when it is.
 */
export function buildNeeds(
  reported: readonly (readonly string[])[] | undefined,
  inputs: ReadonlyArray<{ sources?: ReadonlySet<string> | readonly string[] }>,
): string[][] {
  const all: string[][] = [...(reported ?? []).map((need) => [...need])];
  for (const input of inputs) {
    const sources = input.sources === undefined ? [] : [...input.sources];
    if (sources.length > 0) all.push(sources);
  }
  return minimalNeeds(all);
}

/** Sorted, deduplicated needs with every superset of another need dropped. */
export function minimalNeeds(needs: readonly (readonly string[])[]): string[][] {
  const unique = new Map<string, string[]>();
  for (const need of needs) {
    const sorted = [...new Set(need)].sort();
    if (sorted.length > 0) unique.set(sorted.join(" "), sorted);
  }
  const list = [...unique.values()].sort((a, b) => a.length - b.length || a.join(" ").localeCompare(b.join(" ")));
  const kept: string[][] = [];
  for (const need of list) {
    const set = new Set(need);
    if (!kept.some((smaller) => smaller.every((s) => set.has(s)))) kept.push(need);
  }
  return kept;
}

/** What dispatch needs to know of an agent to place a build. */
export interface Candidate {
  sessionId: string;
  draining?: boolean;
  agent: Pick<AgentInfo, "systems" | "systemFeatures" | "mandatoryFeatures" | "substituters" | "caches" | "storeId">;
}

export interface BuildNeeds extends BuildRequirements {
  needs: readonly (readonly string[])[];
}

/** Can build it under Nix's rule and can obtain what it needs. */
export const canTake = (candidate: Candidate, build: BuildNeeds): boolean =>
  canBuild(capabilitiesOf(candidate.agent), build) && canObtain(reachOf(candidate.agent), build.needs);

/**
 * Where a build received by `holder` should go: `here`; `elsewhere` (another agent's session
 * can take it: leave it in its queue for them); or `nowhere` (no session can: it waits, and is
 * offered again when the sweeper re-sends it). Sessions whose agent is away still count — it may
 * come back — draining ones do not.
 */
export function placeBuild(holder: Candidate, build: BuildNeeds, sessions: readonly Candidate[]): "here" | "elsewhere" | "nowhere" {
  if (!holder.draining && canTake(holder, build)) return "here";
  return takersOf(holder, build, sessions).length > 0 ? "elsewhere" : "nowhere";
}

/**
 * The sessions other than `holder`'s, not draining, that can take a build `holder` leaves
 * (`elsewhere`): the ones to offer it to once it is back in its queue.
 */
export const takersOf = (holder: Candidate, build: BuildNeeds, sessions: readonly Candidate[]): string[] =>
  sessions.filter((s) => s.sessionId !== holder.sessionId && !s.draining && canTake(s, build)).map((s) => s.sessionId);

const hostOf = (storeId: string) => storeId.slice(0, storeId.lastIndexOf("/"));

function describeSources(need: readonly string[]): string {
  const stores = need.filter((s) => s.startsWith("store:")).map((s) => `agent ${hostOf(s.slice("store:".length))}`);
  const caches = need.filter((s) => s.startsWith("cache:")).map((s) => `cache "${s.slice("cache:".length)}"`);
  const substituters = need.filter((s) => s.startsWith("substituter:")).map((s) => s.slice("substituter:".length));
  return [...stores, ...caches, ...substituters].join(" or ");
}

/**
 * Why no agent takes a build that agents could build under Nix's rule — for the job view — or
 * undefined when one of `agents` can take it (or none can build it at all: that is told
 * apart as waiting for an agent).
 */
export function waitingReason(build: BuildNeeds, agents: readonly Candidate["agent"][]): string | undefined {
  const builders = agents.filter((a) => canBuild(capabilitiesOf(a), build));
  if (builders.length === 0) return undefined;
  const reachesOf = builders.map(reachOf);
  if (reachesOf.some((reach) => canObtain(reach, build.needs))) return undefined;
  const blocking = build.needs.find((need) => reachesOf.every((reach) => !need.some((s) => reaches(reach, s))));
  if (blocking === undefined) {
    return "no single agent that can build it reaches every input: each reads only some of the caches and stores that hold them";
  }
  if (blocking.every((s) => s.startsWith("store:"))) {
    return `inputs only on ${describeSources(blocking)}; no shared cache`;
  }
  return `needs paths held only by ${describeSources(blocking)}, which no agent that can build it reads`;
}
