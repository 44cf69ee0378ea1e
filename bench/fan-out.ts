/**
 * `npm run bench:fan-out`: one hub and its dependents, the hub last in the evaluation, so it
 * is built once every dependent is registered and waits for it: its settle then clears them in
 * pages (docs/architecture.md, "Fan-out in pages"), queueing each for 4 protocol-level agents
 * that answer every build at once. The job's time from the webhook, its builds per second once
 * ingest is done, and AWS requests per build; prints them and writes bench/results/fan-out.json,
 * never asserting speed.
 *
 * Knob: NIMBUS_BENCH_FAN_OUT_DEPENDENTS (1000).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { storeHashOf } from "../test/support/generated-paths.ts";
import { integer } from "./bench-options.ts";
import { machineInfo } from "./report.ts";
import { runJobScenario } from "./scenario-job.ts";
import type { Workload } from "./workload.ts";

const DEPENDENTS = integer(process.env, "NIMBUS_BENCH_FAN_OUT_DEPENDENTS", 1000, 1);
const RESULTS = fileURLToPath(new URL("./results/fan-out.json", import.meta.url));

// Fresh paths each run: nothing of an earlier run's is reused.
const seed = Date.now();
const named = (name: string) => ({ drvPath: `/nix/store/${storeHashOf(`${seed}/${name}`)}-${name}.drv`, out: `/nix/store/${storeHashOf(`${seed}/${name}/out`)}-${name}` });
const hub = named("hub");
const derivation = (name: string, inputDrvs: string[]) => {
  const { drvPath, out } = named(name);
  return { kind: "derivation" as const, drvPath, system: "x86_64-linux", requiredFeatures: [], inputDrvs, outputs: { out } };
};
const derivations = [...Array.from({ length: DEPENDENTS }, (_, i) => derivation(`dependent-${i}`, [hub.drvPath])), derivation("hub", [])];
const workload: Workload = {
  options: { derivations: derivations.length, layers: 2, maxInputs: 1, bigParallelShare: 0, seed },
  derivations,
  events: [...derivations, ...derivations.map((d, i) => ({ kind: "attribute" as const, path: ["fanOut", `d${i}`], drvPath: d.drvPath, attributeType: "regular" as const, needsBuild: true }))],
  queues: ["x86_64-linux"],
  edges: DEPENDENTS,
};
const agents = [1, 2, 3, 4].map((i) => ({ name: `x86-linux-${i}`, systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 4 }));

console.log(`Nimbus benchmark: fan-out of one hub to ${DEPENDENTS} dependents`);
const { result } = await runJobScenario({ label: "fan-out", workload, agents, buildMs: 0, timeoutMs: 600_000, baselineRepetitions: 10 });
const figures = {
  dependents: DEPENDENTS,
  totalSeconds: result.totalSeconds,
  ingestSeconds: result.timeline.webhookToIngestDoneMs === null ? null : result.timeline.webhookToIngestDoneMs / 1000,
  buildsPerSecondAfterIngest: result.timeline.buildsPerSecondAfterIngest,
  requestsPerBuild: result.requestsPerBuild,
  machine: machineInfo(),
};
console.log(`\nfan-out: ${DEPENDENTS} dependents of one hub built in ${figures.totalSeconds} s from the webhook (ingest ${figures.ingestSeconds} s); ${figures.buildsPerSecondAfterIngest} builds/s after ingest; ${result.requestsPerBuild.total} requests per build`);
await mkdir(dirname(RESULTS), { recursive: true });
await writeFile(RESULTS, JSON.stringify(figures, null, 2));
console.log(`results: ${RESULTS}`);
process.exit(0);
