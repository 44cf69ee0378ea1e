/**
 * The `nixpkgs` scenario: a whole nixpkgs-shaped job (bench/nixpkgs-graph.ts: five systems,
 * hubs with thousands of dependents, required features) evaluated and built end to end by 8
 * protocol-level agents that answer at once — #11's "100,000-derivation jobs" at
 * NIMBUS_BENCH_NIXPKGS_DERIVATIONS=100000 (about 40 minutes here), 10,000 by default. Not in
 * the default set: it shows that a job of that size is ingested while it builds, that its hubs'
 * dependents are told through their pages, and that it finishes with exact counts, and at
 * what rate; `saturated` is the steady-state figure to compare across changes.
 */
import type { BenchAgentShape } from "./bench-agent.ts";
import { DEFAULT_NIXPKGS_SHAPE, generateNixpkgsGraph, NIXPKGS_FEATURES, NIXPKGS_SYSTEMS } from "./nixpkgs-graph.ts";
import { runJobScenario, type JobScenarioResult } from "./scenario-job.ts";
import { DEFAULT_WORKLOAD, queueLabel, type Workload } from "./workload.ts";

const ALL_FEATURES = [...new Set(NIXPKGS_FEATURES.flatMap((f) => f.features))];

/**
 * 8 agents of 4 slots (as `saturated` has), every (system, features) of the graph served by at
 * least one; i686-linux builds on the x86_64-linux machines, as Nix's `extra-platforms` lets them.
 */
export const NIXPKGS_AGENTS: BenchAgentShape[] = [
  { name: "x86-linux-1", systems: ["x86_64-linux", "i686-linux"], systemFeatures: ALL_FEATURES, concurrentTasks: 4 },
  { name: "x86-linux-2", systems: ["x86_64-linux", "i686-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "x86-linux-3", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 4 },
  { name: "arm-linux-1", systems: ["aarch64-linux"], systemFeatures: ALL_FEATURES, concurrentTasks: 4 },
  { name: "arm-linux-2", systems: ["aarch64-linux"], systemFeatures: [], concurrentTasks: 4 },
  { name: "arm-darwin-1", systems: ["aarch64-darwin"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "arm-darwin-2", systems: ["aarch64-darwin"], systemFeatures: [], concurrentTasks: 4 },
  { name: "x86-darwin-1", systems: ["x86_64-darwin"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
];

export interface NixpkgsShapeSummary {
  derivations: number;
  attributes: number;
  edges: number;
  largestHubDependents: number[];
}

/** The nixpkgs-shaped graph as the job scenario's workload, and what its shape is. */
export function nixpkgsWorkload(derivations: number, seed: number): { workload: Workload; shape: NixpkgsShapeSummary } {
  const graph = generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations, seed });
  const queues = [...new Set(graph.derivations.map((d) => queueLabel(d.system, d.requiredFeatures ?? [])))];
  const workload: Workload = {
    options: { ...DEFAULT_WORKLOAD, derivations, layers: DEFAULT_NIXPKGS_SHAPE.depth, seed },
    derivations: graph.derivations,
    events: graph.events,
    queues,
    edges: graph.edges,
  };
  const shape = {
    derivations: graph.derivations.length,
    attributes: graph.events.length - graph.derivations.length,
    edges: graph.edges,
    largestHubDependents: [...graph.hubDependents.values()].sort((a, b) => b - a).slice(0, 5),
  };
  return { workload, shape };
}

/** Whether some agent of `agents` can build a derivation of this system and features (Nix's rule: system, and every feature). */
export const someAgentBuilds = (agents: readonly BenchAgentShape[], system: string, features: readonly string[]) =>
  agents.some((a) => a.systems.includes(system) && features.every((f) => a.systemFeatures.includes(f)));

export type NixpkgsResult = JobScenarioResult & { shape: NixpkgsShapeSummary };

export async function runNixpkgsScenario(options: { derivations: number; seed: number; timeoutMs: number }): Promise<NixpkgsResult> {
  const { workload, shape } = nixpkgsWorkload(options.derivations, options.seed);
  console.log(`nixpkgs: largest hubs ${shape.largestHubDependents.join(", ")} dependents; systems ${NIXPKGS_SYSTEMS.map((s) => s.system).join(", ")}`);
  const run = await runJobScenario({ label: "nixpkgs", workload, agents: NIXPKGS_AGENTS, buildMs: 0, timeoutMs: options.timeoutMs, baselineRepetitions: 20 });
  return { ...run, shape };
}
