/**
 * The `agents1000` scenario, one size per process: N protocol-level agents over real
 * WebSockets in 20 capability classes (5 systems × 4 feature sets), idle; then the AWS
 * requests of
 *  - one dispatch: an idle agent's `request-work` with nothing queued (the service asks the
 *    queues this agent may serve),
 *  - one wake: the push webhook that creates a job and wakes idle agents for its evaluation,
 *  - ready → dispatched: the `evaluation-events` frame that registers one derivation, queues
 *    it and hands it to an idle agent of its class,
 * so that the same numbers at 10 and at 1,000 agents show whether cost grows with the fleet.
 */
import { sendSignedPush as sendPush } from "@nimbus/cli";
import { BenchAgent, type BenchAgentShape } from "./bench-agent.ts";
import { BenchError, invocationsFinished, openBenchStack, sleep } from "./bench-stack.ts";
import { NIXPKGS_SYSTEMS } from "./nixpkgs-graph.ts";
import type { CounterReport } from "./request-counter.ts";
import { round } from "./stats.ts";
import { storeHashOf } from "../test/support/generated-paths.ts";

export const CAPABILITY_FEATURES: readonly (readonly string[])[] = [[], ["big-parallel"], ["kvm"], ["big-parallel", "kvm"]];

/** Agent i of the fleet: class i mod 20. */
export function fleetShape(i: number): BenchAgentShape {
  const klass = i % (NIXPKGS_SYSTEMS.length * CAPABILITY_FEATURES.length);
  return {
    name: `agent-${String(i).padStart(4, "0")}`,
    systems: [NIXPKGS_SYSTEMS[klass % NIXPKGS_SYSTEMS.length]!.system],
    systemFeatures: [...CAPABILITY_FEATURES[Math.floor(klass / NIXPKGS_SYSTEMS.length)]!],
    concurrentTasks: 2,
  };
}

export interface AgentsAtSize {
  agents: number;
  connectSeconds: number;
  dispatchRequests: number;
  wakeRequests: number;
  readyToDispatchedRequests: number;
  /** DynamoDB read units of the same three (a Scan's one request reads every item it passes). */
  dispatchReadUnits: number;
  wakeReadUnits: number;
  readyToDispatchedReadUnits: number;
  /** DynamoDB read units of the whole one-derivation job (a Scan's requests stay flat while its units grow). */
  jobReadCapacityUnits: number;
  jobRequests: number;
  byOperation: CounterReport["byOperation"];
}

const WEBHOOK = "webhooks/github";
const REQUEST_WORK = "socket/default: request-work";
const EVENTS = "socket/default: evaluation-events";

export async function runAgentsAtSize(size: number, options: { timeoutMs: number; seed: number }): Promise<AgentsAtSize> {
  const name = `agents-${size}-${options.seed}`;
  const drvPath = `/nix/store/${storeHashOf(name)}-${name}.drv`;
  const events = [
    {
      kind: "derivation" as const,
      drvPath,
      system: "aarch64-linux",
      requiredFeatures: ["big-parallel"],
      inputDrvs: [],
      outputs: { out: drvPath.replace(/\.drv$/, "") },
    },
    { kind: "attribute" as const, path: ["one"], drvPath, attributeType: "regular" as const, needsBuild: true },
  ];
  console.log(`agents1000: ${size} protocol-level agents in 20 capability classes`);
  const bench = await openBenchStack();
  const agents: BenchAgent[] = [];
  try {
    const { stack, counter, reads } = bench;
    const connectStart = Date.now();
    for (let i = 0; i < size; i += 20) {
      const wave = Array.from({ length: Math.min(20, size - i) }, (_, j) => new BenchAgent(fleetShape(i + j), events));
      agents.push(...wave);
      await Promise.all(wave.map((a) => a.connect(stack.agentSocketUrl, bench.token, 60_000)));
      if ((i + 20) % 200 === 0) console.log(`  … ${i + 20} connected`);
    }
    const connectSeconds = (Date.now() - connectStart) / 1000;
    // Past every warm-handler belief (the build-queue list's 5 s, empty rare queues' 3 s): each
    // size measures a cold dispatch, not whichever of them the last hellos left fresh.
    await sleep(6000);
    counter.reset();

    agents[0]!.requestWork();
    const [dispatchRequests] = await invocationsFinished(counter, REQUEST_WORK, 1);

    const push = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "nimbus/bench-agents", commit: "a".repeat(40) });
    if (push.status !== 201) throw new BenchError(`the push webhook was answered ${push.status}: ${JSON.stringify(push.body)}`);
    const [wakeRequests] = await invocationsFinished(counter, WEBHOOK, 1);
    const [readyToDispatchedRequests] = await invocationsFinished(counter, EVENTS, 1, options.timeoutMs);
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      const job = await reads.job(String(push.body.jobId));
      if (["succeeded", "failed", "cancelled"].includes(job.status)) break;
      if (Date.now() > deadline) throw new BenchError(`the one-derivation job did not finish with ${size} agents: ${job.status}`);
      await sleep(200);
    }
    await sleep(500);
    const report = counter.report();
    const builders = agents.filter((a) => a.builds.length > 0).map((a) => a.name);
    if (builders.length !== 1) throw new BenchError(`the one derivation was built by ${builders.length} agents (${builders.join(", ")})`);
    const problems = agents.flatMap((a) => a.problems);
    if (problems.length) console.error(`  WARNING: ${problems.length} agent-side problem(s), e.g. ${problems[0]!.what}`);
    return {
      agents: size,
      connectSeconds: round(connectSeconds),
      dispatchRequests: dispatchRequests!,
      wakeRequests: wakeRequests!,
      readyToDispatchedRequests: readyToDispatchedRequests!,
      dispatchReadUnits: round(counter.capacityOf(REQUEST_WORK).read, 1),
      wakeReadUnits: round(counter.capacityOf(WEBHOOK).read, 1),
      readyToDispatchedReadUnits: round(counter.capacityOf(EVENTS).read, 1),
      jobReadCapacityUnits: round(report.capacity.read, 1),
      jobRequests: report.counted.total,
      byOperation: report.byOperation,
    };
  } finally {
    for (const agent of agents) agent.close();
    await bench.close();
  }
}
