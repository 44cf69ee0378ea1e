/**
 * One scenario in a process of its own (one local stack per process): `scenario.ts <name>
 * [agent count]`, run by bench/run.ts, which reads the result from NIMBUS_BENCH_RESULT_FILE.
 */
import { writeFile } from "node:fs/promises";
import type { BenchAgentShape } from "./bench-agent.ts";
import { parseBenchOptions, SCENARIOS, type ScenarioName } from "./bench-options.ts";
import { runAgentsAtSize } from "./scenario-agents.ts";
import { runIngestScenario } from "./scenario-ingest.ts";
import { runJobScenario } from "./scenario-job.ts";
import { runNixpkgsScenario } from "./scenario-nixpkgs.ts";
import { runRealNixScenario } from "./scenario-real-nix.ts";
import { DEFAULT_WORKLOAD, generateChains, generateWorkload } from "./workload.ts";

/** 8 agents: every (system, features) queue has at least one; big-parallel ones serve both of their system's. */
export const JOB_AGENTS: BenchAgentShape[] = [
  { name: "x86-linux-1", systems: ["x86_64-linux"], systemFeatures: ["big-parallel", "kvm"], concurrentTasks: 4 },
  { name: "x86-linux-2", systems: ["x86_64-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "x86-linux-3", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 4 },
  { name: "arm-linux-1", systems: ["aarch64-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "arm-linux-2", systems: ["aarch64-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "arm-linux-3", systems: ["aarch64-linux"], systemFeatures: [], concurrentTasks: 4 },
  { name: "x86-darwin-1", systems: ["x86_64-darwin"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "x86-darwin-2", systems: ["x86_64-darwin"], systemFeatures: [], concurrentTasks: 4 },
];

async function runScenario(name: ScenarioName, size: number | undefined): Promise<unknown> {
  const options = parseBenchOptions([name], process.env);
  switch (name) {
    case "saturated": {
      const { derivations, layers, baselineRepetitions } = options.saturated;
      const workload = generateWorkload({ ...DEFAULT_WORKLOAD, derivations, layers, seed: options.seed });
      return runJobScenario({ label: "saturated", workload, agents: JOB_AGENTS, buildMs: 0, timeoutMs: options.timeoutMs, baselineRepetitions });
    }
    case "idle": {
      const { chainsPerQueue, length, buildMs } = options.idle;
      const workload = generateChains({ chainsPerQueue, length, seed: options.seed });
      return runJobScenario({ label: "idle", workload, agents: JOB_AGENTS, buildMs, timeoutMs: options.timeoutMs, baselineRepetitions: 50 });
    }
    case "ingest":
      return runIngestScenario({ derivations: options.ingest.derivations, seed: options.seed, timeoutMs: options.timeoutMs });
    case "agents1000":
      if (size === undefined) throw new Error("agents1000 runs one agent count per process: scenario.ts agents1000 <count>");
      return runAgentsAtSize(size, { timeoutMs: options.timeoutMs, seed: options.seed });
    case "realnix":
      return runRealNixScenario({ n: options.realNix.n, timeoutMs: options.timeoutMs });
    case "nixpkgs":
      return runNixpkgsScenario({ derivations: options.nixpkgs.derivations, seed: options.seed, timeoutMs: options.timeoutMs });
  }
}

async function main(): Promise<number> {
  const [name, sizeText] = process.argv.slice(2);
  if (!name || !(SCENARIOS as readonly string[]).includes(name)) {
    console.error(`usage: scenario.ts <${SCENARIOS.join("|")}> [agent count]`);
    return 2;
  }
  const resultFile = process.env.NIMBUS_BENCH_RESULT_FILE;
  const result = await runScenario(name as ScenarioName, sizeText === undefined ? undefined : Number(sizeText));
  if (resultFile) await writeFile(resultFile, JSON.stringify(result));
  else console.log(JSON.stringify(result, null, 2));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error);
    process.exit(1);
  },
);
