/**
 * The `ingest` scenario: a nixpkgs-like evaluation (bench/nixpkgs-graph.ts) sent by one
 * protocol-level agent through the real evaluation-event path (`evaluation-events` frames, at
 * most 4 unacknowledged), timed from the `evaluate` task to the last batch's ack; then the
 * floor, a bare BatchWriteItem loop writing as many items to the same emulator in the same run.
 * The evaluating agent builds nothing (its system is no derivation's), so ingest is measured
 * alone: derivations that become ready are queued and wait.
 */
import { sendSignedPush as sendPush } from "@nimbus/cli";
import { measureBatchWriteFloor, measureConditionalPutCeiling } from "./baseline.ts";
import { BenchAgent } from "./bench-agent.ts";
import { BenchError, openBenchStack, sleep } from "./bench-stack.ts";
import { reportProblems } from "./diagnosis.ts";
import { StackReads } from "./stack-reads.ts";
import { DEFAULT_NIXPKGS_SHAPE, generateNixpkgsGraph, longestChain } from "./nixpkgs-graph.ts";
import type { CounterReport } from "./request-counter.ts";
import { round } from "./stats.ts";
import { batchEvents } from "./workload.ts";

export interface IngestResult {
  derivations: number;
  events: number;
  batches: number;
  seconds: number;
  eventsPerSecond: number;
  floorEventsPerSecond: number;
  floorSeconds: number;
  /** eventsPerSecond / floorEventsPerSecond (#11 asks for at least 0.5). */
  ofFloor: number;
  /**
   * The most ingest could reach while each new derivation is one conditional PutItem: events
   * per second if those puts (as many as derivations, as many in flight as ingest sends) were
   * all it did, on the same emulator (bench/baseline.ts `measureConditionalPutCeiling`), and that
   * as a share of the floor.
   */
  conditionalPutCeiling: { seconds: number; eventsPerSecond: number; ofFloor: number };
  /**
   * The same share in CPU time of this process (the service, the emulator and the agent all run
   * in it) rather than wall time: the floor's CPU seconds per event over ingest's. Less at the
   * mercy of other work on the machine than the wall-clock share.
   */
  cpu: { seconds: number; floorSeconds: number; ofFloor: number };
  shape: { depth: number; edges: number; largestHubDependents: number[]; systems: Record<string, number>; features: Record<string, number> };
  requestsPerEvent: { dynamodb: number; sqs: number; gateway: number; total: number };
  requests: CounterReport;
  /**
   * The largest items ingest left that could grow with the job (#11: none may grow without
   * bound): the job's (its record of seen batches) and the hubs' derivation items (their
   * dependents are Edges rows), in bytes, against DynamoDB's 400 KB.
   */
  itemBytes: { job: number; largestHub: number };
  problems: string[];
}

export async function runIngestScenario(options: { derivations: number; seed: number; timeoutMs: number }): Promise<IngestResult> {
  const graph = generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations: options.derivations, seed: options.seed });
  const systems: Record<string, number> = {};
  const features: Record<string, number> = {};
  for (const d of graph.derivations) {
    systems[d.system] = (systems[d.system] ?? 0) + 1;
    const key = d.requiredFeatures.join("+") || "(none)";
    features[key] = (features[key] ?? 0) + 1;
  }
  const shape = {
    depth: longestChain(graph.derivations),
    edges: graph.edges,
    largestHubDependents: [...graph.hubDependents.values()].sort((a, b) => b - a).slice(0, 5),
    systems,
    features,
  };
  const batches = batchEvents("eval-j000000000000aaaaaaaa", graph.events).length;
  console.log(
    `ingest: a nixpkgs-like evaluation of ${graph.derivations.length} derivations and ${graph.events.length - graph.derivations.length} attributes ` +
      `(${graph.edges} edges, ${shape.depth} deep, largest hubs ${shape.largestHubDependents.join(", ")} dependents) in ${batches} batches`,
  );

  const bench = await openBenchStack();
  const agent = new BenchAgent({ name: "evaluator", systems: ["bench-evaluates-only"], systemFeatures: [], concurrentTasks: 1 }, graph.events);
  try {
    const { stack, counter, logLines } = bench;
    await agent.connect(stack.agentSocketUrl, bench.token);
    await sleep(500);
    counter.reset();
    const logsBefore = logLines.length;
    const cpuBefore = process.cpuUsage();
    const push = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, {
      repository: "nimbus/bench-ingest",
      commit: (options.seed.toString(16) + "c".repeat(40)).slice(0, 40),
    });
    if (push.status !== 201) throw new BenchError(`the push webhook was answered ${push.status}: ${JSON.stringify(push.body)}`);
    const started = Date.now();
    let lastProgress = started;
    for (;;) {
      const timing = agent.evaluations[0];
      if (timing?.doneAt !== undefined) break;
      if (Date.now() - started > options.timeoutMs) {
        throw new BenchError(`ingest did not finish within ${options.timeoutMs / 1000} s (NIMBUS_BENCH_TIMEOUT_S): ${timing?.acked ?? 0} of ${batches} batches acknowledged`);
      }
      if (Date.now() - lastProgress >= 5000) {
        lastProgress = Date.now();
        console.log(`  … ${((Date.now() - started) / 1000).toFixed(0)} s: ${timing?.acked ?? 0} of ${batches} batches acknowledged`);
      }
      await sleep(100);
    }
    const timing = agent.evaluations[0]!;
    const seconds = (timing.lastAckAt! - timing.receivedAt) / 1000;
    const cpuSeconds = cpuSecondsSince(cpuBefore);
    await sleep(1000); // evaluation-done and its follow-ups
    const requests = counter.report();
    const reads = new StackReads(stack);
    const itemBytes = {
      job: (await reads.itemBytes("Jobs", { jobId: (push.body as { jobId: string }).jobId })) ?? 0,
      largestHub: Math.max(0, ...(await Promise.all([...graph.hubDependents.keys()].map(async (drvPath) => (await reads.itemBytes("Derivations", { drvPath })) ?? 0)))),
    };
    reads.close();
    console.log(`  largest items: the job ${itemBytes.job} bytes after ${batches} batches, a hub's derivation ${itemBytes.largestHub} bytes (DynamoDB's limit: 400 KB)`);
    process.stdout.write(`  ingested in ${round(seconds)} s; floor (bare BatchWriteItem loop, ${graph.events.length} items)… `);
    const floorCpuBefore = process.cpuUsage();
    const floor = await measureBatchWriteFloor(
      stack.dynamodbEndpoint,
      graph.events.map((event, i) => ({ key: `${i}-${"drvPath" in event ? event.drvPath : event.kind}`, body: JSON.stringify(event) })),
    );
    const floorCpuSeconds = cpuSecondsSince(floorCpuBefore);
    console.log(`${round(floor.seconds)} s (CPU: ingest ${round(cpuSeconds)} s, floor ${round(floorCpuSeconds)} s)`);
    const ceiling = await measureConditionalPutCeiling(stack.dynamodbEndpoint, graph.derivations.length, CONDITIONAL_PUTS_AT_ONCE);
    const ceilingEventsPerSecond = graph.events.length / ceiling.seconds;
    console.log(
      `  ceiling while each new derivation is a conditional PutItem: ${graph.derivations.length} of them alone take ${round(ceiling.seconds)} s ` +
        `(${round(ceilingEventsPerSecond, 1)} events/s, ${Math.round((100 * ceilingEventsPerSecond) / floor.itemsPerSecond)}% of the floor)`,
    );
    const eventsPerSecond = graph.events.length / seconds;
    const perEvent = (n: number) => round(n / graph.events.length, 2);
    reportProblems(logLines.slice(logsBefore), [agent], console.error);
    return {
      derivations: graph.derivations.length,
      events: graph.events.length,
      batches,
      seconds: round(seconds),
      eventsPerSecond: round(eventsPerSecond, 1),
      floorEventsPerSecond: round(floor.itemsPerSecond, 1),
      floorSeconds: round(floor.seconds),
      ofFloor: round(eventsPerSecond / floor.itemsPerSecond, 3),
      conditionalPutCeiling: { seconds: round(ceiling.seconds), eventsPerSecond: round(ceilingEventsPerSecond, 1), ofFloor: round(ceilingEventsPerSecond / floor.itemsPerSecond, 3) },
      cpu: { seconds: round(cpuSeconds), floorSeconds: round(floorCpuSeconds), ofFloor: round(floorCpuSeconds / cpuSeconds, 3) },
      shape,
      requestsPerEvent: {
        dynamodb: perEvent(requests.counted.dynamodb),
        sqs: perEvent(requests.counted.sqs),
        gateway: perEvent(requests.counted.gateway),
        total: perEvent(requests.counted.total),
      },
      requests,
      itemBytes,
      problems: [...logLines.slice(logsBefore).map((l) => l.line), ...agent.problems.map((p) => p.what)].slice(0, 20),
    };
  } finally {
    agent.close();
    await bench.close();
  }
}

/** Conditional writes flow/register-batch.ts keeps in flight (its WRITES_AT_ONCE). */
const CONDITIONAL_PUTS_AT_ONCE = 16;

/** CPU seconds (user and system, every thread) this process spent since `before`. */
function cpuSecondsSince(before: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(before);
  return (user + system) / 1e6;
}
