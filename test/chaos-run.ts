/**
 * `npm run chaos`: the long chaos run (docs/reliability.md, "What chaos proves") — 10,000
 * derivations in 4 jobs over 4 platforms, 6 protocol-level agents killed, restarted and cut
 * off, handler invocations dying at random AWS requests, frames and queue messages delivered
 * twice, the sweeper every 500 ms. It prints the faults injected, the figures and the run's
 * duration, and exits 1 if anything did not end as the graph says. Not part of `npm test`
 * (test/chaos.test.ts runs 300 derivations there).
 *
 * Knobs (environment): NIMBUS_CHAOS_DERIVATIONS (10000), NIMBUS_CHAOS_JOBS (4),
 * NIMBUS_CHAOS_SEED (1), NIMBUS_CHAOS_HANDLER_DEATH (per AWS request, 0.0005),
 * NIMBUS_CHAOS_DUPLICATES (frames and messages, 0.02), NIMBUS_CHAOS_MINUTES (storm at most, 15),
 * NIMBUS_CHAOS_FINISH_MINUTES (once the storm is over, how long the jobs may go without progress, 10).
 */
import { runChaos, type ChaosConfig } from "./support/chaos.ts";

const number = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, not ${JSON.stringify(raw)}`);
  return value;
};

const derivations = number("NIMBUS_CHAOS_DERIVATIONS", 10_000);
const seed = number("NIMBUS_CHAOS_SEED", 1);
const duplicates = number("NIMBUS_CHAOS_DUPLICATES", 0.02);

const config: ChaosConfig = {
  graph: { derivations, layers: Math.max(10, Math.round(derivations / 250)), jobs: number("NIMBUS_CHAOS_JOBS", 4), failShare: 0.003, seed },
  agents: [
    { name: "x86-kvm", systems: ["x86_64-linux"], systemFeatures: ["kvm", "big-parallel"], concurrentTasks: 4, buildMs: 20 },
    { name: "x86-1", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 4, buildMs: 30 },
    { name: "x86-2", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 4, buildMs: 40 },
    { name: "arm-big", systems: ["aarch64-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4, buildMs: 30 },
    { name: "arm", systems: ["aarch64-linux"], systemFeatures: [], concurrentTasks: 4, buildMs: 40 },
    { name: "both", systems: ["aarch64-linux", "x86_64-linux"], systemFeatures: ["kvm"], concurrentTasks: 3, buildMs: 25 },
  ],
  exceptionalShare: 0.01,
  faults: { handlerDeath: number("NIMBUS_CHAOS_HANDLER_DEATH", 0.0005), duplicateFrame: duplicates, duplicateMessage: duplicates, seed },
  actionEveryMs: 400,
  stormMs: number("NIMBUS_CHAOS_MINUTES", 15) * 60_000,
  stormUntilSettled: 0.97,
  finishWithinMs: number("NIMBUS_CHAOS_FINISH_MINUTES", 10) * 60_000,
  sweepIntervalMs: 500,
  environment: {
    NIMBUS_HEARTBEAT_INTERVAL_MS: "1000",
    NIMBUS_SESSION_GRACE_MS: "10000",
    NIMBUS_REQUEUE_AFTER_MS: "5000",
    NIMBUS_RETRY_BASE_MS: "200",
    NIMBUS_RETRY_MAX_MS: "2000",
    NIMBUS_MAX_ATTEMPTS: "100",
    NIMBUS_MAX_EVALUATION_ATTEMPTS: "100",
  },
  evaluationBatchSize: 25,
  heartbeatMs: 1_000,
  resendMs: 30_000,
  seed,
  viewEveryMs: 15_000,
  progress: (line) => console.log(line),
  progressEveryMs: 30_000,
};

console.log(`chaos: ${derivations} derivations in ${config.graph.jobs} jobs, ${config.agents.length} agents, faults ${JSON.stringify(config.faults)}`);
const report = await runChaos(config);
const minutes = (report.durationMs / 60_000).toFixed(1);
console.log(`\nchaos run: ${report.derivations} derivations, ${report.jobs} jobs, ${minutes} min`);
const settled = report.settledAfterStormMs === undefined ? "did not settle" : `settled ${(report.settledAfterStormMs / 1000).toFixed(0)} s after it`;
console.log(`storm: ${(report.stormEndedAfterMs / 60_000).toFixed(1)} min; ${settled}; lost builds: ${report.lostBuilds}`);
console.log(`faults injected: ${Object.entries(report.faults).map(([k, v]) => `${k} ${v}`).join(", ")}`);
console.log(
  `work: ${report.buildTasks} build tasks for ${report.derivations} derivations, ${report.retries} re-queues, ` +
    `${report.refusedDeliveries} duplicate or stale deliveries refused, ${report.gatewayErrors} gateway errors seen by agents`,
);
if (report.problems.length) {
  console.log(`\nNOT CLEAN: ${report.problems.length} problem(s):\n${report.problems.join("\n")}`);
  process.exit(1);
}
console.log("clean: every job ended as its graph says, every derivation settled exactly once, no slot left held");
process.exit(0);
