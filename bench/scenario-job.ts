/**
 * One synthetic job through the whole local stack — evaluated and built by protocol-level
 * agents — measuring builds per second, ready-to-dispatched latency and the AWS requests the
 * handlers make per build. The `saturated` scenario runs it with agents that answer at once
 * (more ready work than slots); `idle` with a trickle of chains and agents that take a while,
 * so there are always free slots.
 */
import { sendSignedPush as sendPush } from "@nimbus/cli";
import { analyse, type RunResult } from "./analysis.ts";
import { BenchAgent, type BenchAgentShape } from "./bench-agent.ts";
import { measureBaseline } from "./baseline.ts";
import { BenchError, openBenchStack, sleep } from "./bench-stack.ts";
import { diagnoseStack, reportProblems } from "./diagnosis.ts";
import type { CounterReport } from "./request-counter.ts";
import type { JobSnapshot, StackReads } from "./stack-reads.ts";
import { batchEvents, type Workload } from "./workload.ts";

export interface JobScenarioOptions {
  label: string;
  workload: Workload;
  agents: BenchAgentShape[];
  /** How long each build takes on the agents (0: answered at once). */
  buildMs: number;
  timeoutMs: number;
  baselineRepetitions: number;
}

export interface JobScenarioResult {
  result: RunResult;
  requests: CounterReport;
  /** Agent connection time during the job (agents × seconds), for API Gateway's connection minutes. */
  connectionSeconds: number;
  /**
   * How busy the main thread was from the webhook to the job's end (0–1): locally every handler,
   * the gateway, fauxqs and the bench's agents share it (dynalite has a thread of its own), so
   * near 1 the local stack, not the dispatch path, sets the latency — work waits for the CPU.
   */
  mainThreadBusy: number;
}

const FINISHED = ["succeeded", "failed", "cancelled"];

export async function runJobScenario(options: JobScenarioOptions): Promise<JobScenarioResult> {
  const { workload, label } = options;
  console.log(
    `${label}: ${workload.derivations.length} derivations (${workload.edges} edges, ${workload.queues.length} queues), ` +
      `${options.agents.length} agents × ${options.agents[0]?.concurrentTasks} slots, builds take ${options.buildMs} ms`,
  );
  const batches = batchEvents("eval-j000000000000aaaaaaaa", workload.events).length;
  console.log(`  evaluation: ${workload.events.length} events in ${batches} batches (≤ 1000 events, ≤ 32 KB each)`);

  const bench = await openBenchStack();
  const agents: BenchAgent[] = [];
  try {
    const { stack, reads, counter, logLines } = bench;
    // Baseline first, on idle emulators, with clients of its own.
    const baseline = await measureBaseline({ sqs: stack.sqsEndpoint, dynamodb: stack.dynamodbEndpoint }, options.baselineRepetitions);
    for (const shape of options.agents) {
      const agent = new BenchAgent(shape, workload.events, options.buildMs);
      agents.push(agent);
      await agent.connect(stack.agentSocketUrl, bench.token);
    }
    await sleep(500); // the hellos' follow-ups finish: they are not the job's work
    counter.reset();
    const logsBeforeJob = logLines.length;

    const webhookAt = Date.now();
    const loopBefore = performance.eventLoopUtilization();
    const push = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, {
      repository: `nimbus/bench-${label}`,
      commit: (workload.options.seed.toString(16) + "b".repeat(40)).slice(0, 40),
    });
    if (push.status !== 201) throw new BenchError(`the push webhook was answered ${push.status}: ${JSON.stringify(push.body)}`);
    const jobId = String(push.body.jobId);
    console.log(`  job ${jobId} started by a signed push webhook`);

    const job = await waitForJob(reads, jobId, webhookAt, agents, options.timeoutMs);
    const pollDoneAt = Date.now();
    const mainThreadBusy = performance.eventLoopUtilization(loopBefore).utilization;
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
    return { result, requests, connectionSeconds: (agents.length * (pollDoneAt - webhookAt)) / 1000, mainThreadBusy };
  } catch (error) {
    console.error(`\n${label} failed: ${error instanceof Error ? error.message : String(error)}`);
    await diagnoseStack(bench.reads, workload, agents, console.error).catch(() => {});
    reportProblems(bench.logLines, agents, console.error);
    throw error;
  } finally {
    for (const agent of agents) agent.close();
    await bench.close();
  }
}

/** Polls `GET /api/jobs/{id}` until the job ends; a clear error after the timeout. */
async function waitForJob(reads: StackReads, jobId: string, since: number, agents: BenchAgent[], timeoutMs: number): Promise<JobSnapshot> {
  const deadline = since + timeoutMs;
  let lastProgress = Date.now();
  for (;;) {
    const job = await reads.job(jobId);
    if (FINISHED.includes(job.status)) return job;
    if (Date.now() > deadline) {
      throw new BenchError(
        `job ${jobId} did not finish within ${timeoutMs / 1000} s (NIMBUS_BENCH_TIMEOUT_S): status ${job.status}, ` +
          `evaluation ${job.evaluation?.status}, counts ${JSON.stringify(job.counts ?? {})}`,
      );
    }
    if (Date.now() - lastProgress >= 5000) {
      lastProgress = Date.now();
      const built = agents.reduce((n, a) => n + a.builds.length, 0);
      console.log(
        `  … ${((Date.now() - since) / 1000).toFixed(0)} s: job ${job.status}, evaluation ${job.evaluation?.status}, ` +
          `${built} builds answered, counts ${JSON.stringify(job.counts ?? {})}`,
      );
    }
    await sleep(1000);
  }
}
