/**
 * `npm run bench`: a synthetic job through the whole local stack — a seeded, layered graph
 * of derivations over 3 systems and 2 feature sets, evaluated and built by protocol-level
 * agents that answer at once — measuring builds per second, ready-to-dispatched latency and
 * the AWS requests the handlers make per build, next to what the emulators cost on their own.
 * It prints numbers and writes bench/results/latest.json; it never asserts speed, but it
 * reports loudly what looks wrong (a derivation not built exactly once, handler errors).
 *
 * Knobs (environment): NIMBUS_BENCH_DERIVATIONS (2000), NIMBUS_BENCH_LAYERS (20),
 * NIMBUS_BENCH_SEED, NIMBUS_BENCH_TIMEOUT_S (600), NIMBUS_BENCH_BASELINE_REPS (200).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { ListQueuesCommand } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { importHandlerFrom, localTableName, startLocalStack, type LocalStack } from "@nimbus/local";
// The handlers' own SDK clients (module singletons), a subpath export of @nimbus/service: the
// same module (same real path) the handlers load.
import { dynamo, gatewayManagement, sqs } from "@nimbus/service/aws-clients";
import { analyse } from "./analysis.ts";
import { BenchAgent, type BenchAgentShape } from "./bench-agent.ts";
import { measureBaseline } from "./baseline.ts";
import { diagnoseStack, reportProblems } from "./diagnosis.ts";
import { sendSignedPush as sendPush } from "@nimbus/cli";
import { machineInfo, printReport, writeResults } from "./report.ts";
import { OUTSIDE_HANDLERS, RequestCounter } from "./request-counter.ts";
import { StackReads, type JobSnapshot } from "./stack-reads.ts";
import { round } from "./stats.ts";
import { batchEvents, DEFAULT_WORKLOAD, FEATURE_SETS, generateWorkload, SYSTEMS, type Workload } from "./workload.ts";

const env = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, not ${JSON.stringify(raw)}`);
  return value;
};

const config = {
  derivations: env("NIMBUS_BENCH_DERIVATIONS", DEFAULT_WORKLOAD.derivations),
  layers: env("NIMBUS_BENCH_LAYERS", DEFAULT_WORKLOAD.layers),
  seed: env("NIMBUS_BENCH_SEED", DEFAULT_WORKLOAD.seed),
  timeoutMs: env("NIMBUS_BENCH_TIMEOUT_S", 600) * 1000,
  baselineRepetitions: env("NIMBUS_BENCH_BASELINE_REPS", 200),
  pollIntervalMs: 1000,
  progressIntervalMs: 5000,
};

/** 8 agents: every (system, features) queue has at least one; big-parallel ones serve both of their system's. */
const AGENTS: BenchAgentShape[] = [
  { name: "x86-linux-1", systems: ["x86_64-linux"], systemFeatures: ["big-parallel", "kvm"], concurrentTasks: 4 },
  { name: "x86-linux-2", systems: ["x86_64-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "x86-linux-3", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 4 },
  { name: "arm-linux-1", systems: ["aarch64-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "arm-linux-2", systems: ["aarch64-linux"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "arm-linux-3", systems: ["aarch64-linux"], systemFeatures: [], concurrentTasks: 4 },
  { name: "x86-darwin-1", systems: ["x86_64-darwin"], systemFeatures: ["big-parallel"], concurrentTasks: 4 },
  { name: "x86-darwin-2", systems: ["x86_64-darwin"], systemFeatures: [], concurrentTasks: 4 },
];

const FINISHED = ["succeeded", "failed", "cancelled"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class BenchError extends Error {
  override name = "BenchError";
}

async function main(): Promise<number> {
  const wallStart = Date.now();
  const workload = generateWorkload({ ...DEFAULT_WORKLOAD, derivations: config.derivations, layers: config.layers, seed: config.seed });
  console.log(
    `Nimbus benchmark: ${workload.derivations.length} derivations (${workload.edges} edges, ${config.layers} layers, ` +
      `${workload.queues.length} queues: ${workload.queues.join(", ")}), ${AGENTS.length} agents, seed ${config.seed}`,
  );
  const batches = batchEvents("eval-j000000000000aaaaaaaa", workload.events).length;
  console.log(`  evaluation: ${workload.events.length} events in ${batches} batches (≤ 1000 events, ≤ 32 KB each)`);

  const logLines: Array<{ at: number; line: string }> = [];
  // Left out: the JSON API (only the bench calls it) and requests made outside any handler.
  const counter = new RequestCounter((source) => source.startsWith("api/") || source === OUTSIDE_HANDLERS, localTableName(""));
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once("SIGINT", onSigint);

  const dataDir = await mkdtemp(join(os.tmpdir(), "nimbus-bench-"));
  let stack: LocalStack | undefined;
  let reads: StackReads | undefined;
  const agents: BenchAgent[] = [];
  const partial: Record<string, unknown> = { timestamp: new Date().toISOString(), completed: false };
  try {
    stack = await startLocalStack({
      port: 0,
      dataDir,
      sweepIntervalMs: 0,
      log: (line) => logLines.push({ at: Date.now(), line }),
      resolveHandler: counter.wrapResolver(importHandlerFrom()),
    });
    reads = new StackReads(stack);

    // Baseline first, on idle emulators, with clients of its own.
    process.stdout.write(`  baseline: ${config.baselineRepetitions} repetitions each… `);
    const baseline = await measureBaseline({ sqs: stack.sqsEndpoint, dynamodb: stack.dynamodbEndpoint }, config.baselineRepetitions);
    console.log("done");
    partial.baseline = baseline;

    // Count on the handlers' clients (created here if no handler has run yet: the same config).
    counter.attach("dynamodb", dynamo());
    counter.attach("sqs", sqs());
    counter.attach("gateway", gatewayManagement());
    await selfCheck(counter);

    const token = await reads.createToken("bench");
    for (const shape of AGENTS) {
      const agent = new BenchAgent(shape, workload.events);
      agents.push(agent);
      await agent.connect(stack.agentSocketUrl, token);
    }
    await sleep(500); // the hellos' follow-ups finish: they are not the job's work
    counter.reset();
    const logsBeforeJob = logLines.length;

    const webhookAt = Date.now();
    const push = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, {
      repository: "nimbus/bench",
      commit: (config.seed.toString(16) + "b".repeat(40)).slice(0, 40),
    });
    if (push.status !== 201) throw new BenchError(`the push webhook was answered ${push.status}: ${JSON.stringify(push.body)}`);
    const jobId = String(push.body.jobId);
    console.log(`  job ${jobId} started by a signed push webhook`);

    const job = await waitForJob(reads, jobId, webhookAt, agents, abort.signal);
    const pollDoneAt = Date.now();
    await sleep(1000); // the last handlers' follow-ups (freed slots asking for work) are the job's too
    const requests = counter.report();

    const result = analyse({
      workload,
      agents,
      job,
      jobId,
      items: await reads.derivations(),
      requests,
      queueLabels: await reads.buildQueueLabels(),
      baseline,
      webhookAt,
      pollDoneAt,
      logLines: logLines.slice(logsBeforeJob),
    });
    const output = {
      timestamp: new Date().toISOString(),
      completed: true,
      ...result,
      wallSeconds: round((Date.now() - wallStart) / 1000),
      machine: machineInfo(),
      config: configInfo(workload),
    };
    printReport(output, requests);
    await writeResults(output);
    return 0; // a benchmark reports: anomalies are printed and written, not fatal
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`\nbenchmark failed: ${message}`);
    if (reads) partial.diagnosis = await diagnoseStack(reads, workload, agents, console.error);
    reportProblems(logLines, agents, console.error);
    Object.assign(partial, {
      error: message,
      requests: counter.report(),
      handlerLogLines: logLines.slice(0, 50).map((l) => l.line),
      agentProblems: agents.flatMap((a) => a.problems).slice(0, 50),
      machine: machineInfo(),
      config: configInfo(workload),
    });
    await writeResults(partial).catch(() => {});
    return 1;
  } finally {
    process.removeListener("SIGINT", onSigint);
    for (const agent of agents) agent.close();
    reads?.close();
    if (stack) {
      const stopped = await Promise.race([stack.stop().then(() => true), sleep(30_000).then(() => false)]).catch((error: unknown) => {
        console.error(`stopping the stack failed: ${String(error)}`);
        return true;
      });
      if (!stopped) console.error("the stack did not stop within 30 s");
    }
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** One request through each counted client, outside handlers, must count exactly once. */
async function selfCheck(counter: RequestCounter): Promise<void> {
  await dynamo().send(new GetCommand({ TableName: localTableName("Jobs"), Key: { jobId: "bench-self-check" } }));
  await sqs().send(new ListQueuesCommand({ MaxResults: 1 }));
  const seen = counter.countsOf(OUTSIDE_HANDLERS);
  if (seen.dynamodb !== 1 || seen.sqs !== 1) {
    throw new BenchError(`the request counter is miscounting: one request each gave ${JSON.stringify(seen)}`);
  }
}

/** Polls `GET /api/jobs/{id}` until the job ends; a clear error after the timeout or on Ctrl-C. */
async function waitForJob(reads: StackReads, jobId: string, since: number, agents: BenchAgent[], signal: AbortSignal): Promise<JobSnapshot> {
  const deadline = since + config.timeoutMs;
  let lastProgress = Date.now();
  for (;;) {
    const job = await reads.job(jobId);
    if (FINISHED.includes(job.status)) return job;
    if (signal.aborted) throw new BenchError("interrupted (SIGINT)");
    if (Date.now() > deadline) {
      throw new BenchError(
        `job ${jobId} did not finish within ${config.timeoutMs / 1000} s (NIMBUS_BENCH_TIMEOUT_S): status ${job.status}, ` +
          `evaluation ${job.evaluation?.status}, counts ${JSON.stringify(job.counts ?? {})}`,
      );
    }
    if (Date.now() - lastProgress >= config.progressIntervalMs) {
      lastProgress = Date.now();
      const built = agents.reduce((n, a) => n + a.builds.length, 0);
      console.log(
        `  … ${((Date.now() - since) / 1000).toFixed(0)} s: job ${job.status}, evaluation ${job.evaluation?.status}, ` +
          `${built} builds answered, counts ${JSON.stringify(job.counts ?? {})}`,
      );
    }
    await sleep(config.pollIntervalMs);
  }
}

function configInfo(workload: Workload) {
  return {
    seed: config.seed,
    layers: config.layers,
    systems: SYSTEMS,
    featureSets: FEATURE_SETS,
    queues: workload.queues,
    edges: workload.edges,
    events: workload.events.length,
    agents: AGENTS,
    timeoutSeconds: config.timeoutMs / 1000,
    baselineRepetitions: config.baselineRepetitions,
  };
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
