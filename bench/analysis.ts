/**
 * What a finished run means: throughput, latency, requests per build, and the checks (every
 * derivation built exactly once, by an agent Nix's rule allows, no handler errors).
 */
import type { BenchAgent, BenchAgentShape } from "./bench-agent.ts";
import type { Baseline } from "./baseline.ts";
import type { CounterReport } from "./request-counter.ts";
import type { DerivationRow, JobSnapshot } from "./stack-reads.ts";
import { round, summarize } from "./stats.ts";
import { queueLabel, type Workload } from "./workload.ts";

/** Nix's matching rule, written out here so the bench checks the service rather than trusting it. */
const mayBuild = (agent: BenchAgentShape, drv: { system: string; requiredFeatures: readonly string[] }) =>
  (agent.systems.includes(drv.system) || drv.system === "builtin") && drv.requiredFeatures.every((f) => agent.systemFeatures.includes(f));

/** The first few of a list, for one line of text. */
const sample = (items: string[], n = 5) => items.slice(0, n).join("; ") + (items.length > n ? `; … (${items.length - n} more)` : "");

export type RunResult = ReturnType<typeof analyse>;

export interface RunFacts {
  workload: Workload;
  agents: BenchAgent[];
  job: JobSnapshot;
  jobId: string;
  items: DerivationRow[];
  requests: CounterReport;
  /** Build queue names (as counted) → readable labels. */
  queueLabels: Map<string, string>;
  baseline: Baseline;
  webhookAt: number;
  /** When polling saw the job finished (used if the job has no finishedAt). */
  pollDoneAt: number;
  logLines: Array<{ at: number; line: string }>;
}

/** Per operation, with every build queue counted as one target: the shape of the cost. */
function operationSummary(byOperation: CounterReport["byOperation"], queueLabels: Map<string, string>) {
  const totals = new Map<string, { client: string; operation: string; target: string; count: number }>();
  for (const o of byOperation) {
    const target = queueLabels.has(o.target) ? "build queues (all)" : o.target;
    const key = `${o.client} ${o.operation} ${target}`;
    const entry = totals.get(key) ?? { client: o.client, operation: o.operation, target, count: 0 };
    entry.count += o.count;
    totals.set(key, entry);
  }
  return [...totals.values()].sort((a, b) => b.count - a.count);
}

export function analyse(input: RunFacts) {
  const { workload, agents, job, items, requests, baseline, webhookAt } = input;
  const builds = agents.flatMap((a) => a.builds).sort((a, b) => a.receivedAt - b.receivedAt);
  const evaluation = agents.flatMap((a) => a.evaluations)[0];
  const finishedAt = job.finishedAt ? Date.parse(job.finishedAt) : input.pollDoneAt;
  const firstBuildAt = builds[0]?.receivedAt ?? finishedAt;
  const ingestDoneAt = evaluation?.lastAckAt ?? evaluation?.doneAt;
  const buildSeconds = (finishedAt - firstBuildAt) / 1000;

  // Built exactly once, and only by an agent that may build it.
  const workloadByPath = new Map(workload.derivations.map((d) => [d.drvPath, d]));
  const buildsByPath = new Map<string, typeof builds>();
  for (const build of builds) buildsByPath.set(build.drvPath, [...(buildsByPath.get(build.drvPath) ?? []), build]);
  const itemsByPath = new Map(items.map((i) => [i.drvPath, i]));
  const statusOf = (drvPath: string) => itemsByPath.get(drvPath)?.status ?? "(no item)";
  const notBuilt = workload.derivations.filter((d) => !buildsByPath.has(d.drvPath)).map((d) => ({ drvPath: d.drvPath, status: statusOf(d.drvPath) }));
  const builtMoreThanOnce = [...buildsByPath.entries()]
    .filter(([, list]) => list.length > 1)
    .map(([drvPath, list]) => ({ drvPath, times: list.length, agents: list.map((b) => b.agent), status: statusOf(drvPath) }));
  const unknownBuilds = [...buildsByPath.keys()].filter((p) => !workloadByPath.has(p));
  const shapes = new Map(agents.map((a) => [a.name, a.shape]));
  const matchingViolations = builds
    .filter((b) => {
      const drv = workloadByPath.get(b.drvPath);
      return drv && !mayBuild(shapes.get(b.agent)!, drv);
    })
    .map((b) => ({ drvPath: b.drvPath, agent: b.agent }));

  // Ready → dispatched: the service's queuedAt to the agent's receipt of the (first) build message.
  const latencies: number[] = [];
  const latenciesAfterIngest: number[] = [];
  const latenciesByQueue = new Map<string, number[]>();
  const missingQueuedAt: string[] = [];
  for (const [drvPath, list] of buildsByPath) {
    const queuedAt = itemsByPath.get(drvPath)?.queuedAt;
    if (!queuedAt) {
      missingQueuedAt.push(drvPath);
      continue;
    }
    const latency = list[0]!.receivedAt - Date.parse(queuedAt);
    latencies.push(latency);
    const drv = workloadByPath.get(drvPath);
    if (drv) {
      const queue = queueLabel(drv.system, drv.requiredFeatures);
      latenciesByQueue.set(queue, [...(latenciesByQueue.get(queue) ?? []), latency]);
    }
    if (ingestDoneAt !== undefined && Date.parse(queuedAt) > ingestDoneAt) latenciesAfterIngest.push(latency);
  }
  const latency = summarize(latencies, 1);

  const statusCounts: Record<string, number> = {};
  for (const item of items) statusCounts[item.status] = (statusCounts[item.status] ?? 0) + 1;
  const perBuild = (n: number) => round(n / Math.max(1, builds.length), 2);

  const anomalies: string[] = [];
  if (job.status !== "succeeded") anomalies.push(`the job ended ${job.status}, not succeeded (counts ${JSON.stringify(job.counts ?? {})})`);
  if (notBuilt.length) anomalies.push(`${notBuilt.length} derivation(s) never built: ${sample(notBuilt.map((d) => `${d.drvPath} [${d.status}]`))}`);
  if (builtMoreThanOnce.length)
    anomalies.push(`${builtMoreThanOnce.length} derivation(s) built more than once: ${sample(builtMoreThanOnce.map((d) => `${d.drvPath} ×${d.times} by ${d.agents.join(",")} [${d.status}]`))}`);
  if (unknownBuilds.length) anomalies.push(`${unknownBuilds.length} build(s) of derivations not in the workload: ${sample(unknownBuilds)}`);
  if (matchingViolations.length) anomalies.push(`${matchingViolations.length} build(s) sent to an agent that may not build them: ${sample(matchingViolations.map((v) => `${v.drvPath} → ${v.agent}`))}`);
  const notSucceeded = items.filter((i) => i.status !== "succeeded");
  if (notSucceeded.length) anomalies.push(`${notSucceeded.length} Derivations item(s) not succeeded: ${sample(notSucceeded.map((i) => `${i.drvPath} [${i.status}]`))}`);
  // The job page's counts are kept move by move (storage/job-counts.ts): at the end they must say every derivation succeeded.
  const counted = job.counts ?? {};
  if (job.status === "succeeded" && (counted.succeeded !== workload.derivations.length || Object.keys(counted).some((status) => status !== "succeeded" && counted[status] !== 0)))
    anomalies.push(`the job's counts ${JSON.stringify(counted)} do not say its ${workload.derivations.length} derivations succeeded`);
  if (items.length !== workload.derivations.length) anomalies.push(`the Derivations table holds ${items.length} items, the workload ${workload.derivations.length}`);
  if (missingQueuedAt.length) anomalies.push(`${missingQueuedAt.length} built derivation(s) without queuedAt: ${sample(missingQueuedAt)}`);
  if (latencies.some((l) => l < 0)) anomalies.push(`${latencies.filter((l) => l < 0).length} negative dispatch latencies (queuedAt after the agent got the build)`);
  if (input.logLines.length) anomalies.push(`${input.logLines.length} handler/runtime log line(s) (errors): ${sample(input.logLines.map((l) => l.line), 3)}`);
  const problems = agents.flatMap((a) => a.problems);
  if (problems.length) anomalies.push(`${problems.length} agent-side problem(s): ${sample(problems.map((p) => `${p.agent}: ${p.what}`), 3)}`);
  if (requests.counted.gateway === 0 || requests.counted.dynamodb === 0)
    anomalies.push("the handlers' requests were not counted (are the handlers' SDK clients the ones the bench instrumented?)");

  return {
    jobId: input.jobId,
    derivations: workload.derivations.length,
    agents: agents.length,
    builds: builds.length,
    queues: workload.queues.length,
    buildsPerSecond: round(builds.length / Math.max(0.001, buildSeconds), 1),
    evaluationSeconds: evaluation?.lastAckAt ? round((evaluation.lastAckAt - evaluation.receivedAt) / 1000) : null,
    buildSeconds: round(buildSeconds),
    totalSeconds: round((finishedAt - webhookAt) / 1000),
    timeline: {
      webhookToEvaluateMs: evaluation ? evaluation.receivedAt - webhookAt : null,
      webhookToFirstBuildMs: builds[0] ? firstBuildAt - webhookAt : null,
      webhookToIngestDoneMs: ingestDoneAt !== undefined ? ingestDoneAt - webhookAt : null,
      webhookToJobFinishedMs: finishedAt - webhookAt,
      buildsDuringIngest: ingestDoneAt !== undefined ? builds.filter((b) => b.receivedAt <= ingestDoneAt).length : null,
      buildsPerSecondAfterIngest:
        ingestDoneAt !== undefined && finishedAt > ingestDoneAt
          ? round(builds.filter((b) => b.receivedAt > ingestDoneAt).length / ((finishedAt - ingestDoneAt) / 1000), 1)
          : null,
      evaluation: evaluation ? { agent: evaluation.agent, batches: evaluation.batches, events: evaluation.events } : null,
    },
    dispatchLatencyMs: { p50: latency.p50, p95: latency.p95, p99: latency.p99, mean: latency.mean, max: latency.max, count: latency.count },
    dispatchLatencyAfterIngestMs: summarize(latenciesAfterIngest, 1),
    /** Per (system, features) queue: a queue served late (e.g. behind another one an agent drains first) shows here. */
    dispatchLatencyByQueueMs: Object.fromEntries([...latenciesByQueue.entries()].sort().map(([queue, list]) => [queue, summarize(list, 1)])),
    requestsPerBuild: {
      dynamodb: perBuild(requests.counted.dynamodb),
      sqs: perBuild(requests.counted.sqs),
      gateway: perBuild(requests.counted.gateway),
      total: perBuild(requests.counted.total),
    },
    requests: {
      counted: requests.counted,
      excludedBenchOwn: requests.excluded,
      perBuildBySource: requests.bySource.map((s) => ({
        source: s.source,
        invocations: requests.invocations[s.source] ?? 0,
        dynamodb: perBuild(s.dynamodb),
        sqs: perBuild(s.sqs),
        gateway: perBuild(s.gateway),
        total: perBuild(s.total),
        perInvocation: round(s.total / Math.max(1, requests.invocations[s.source] ?? 0), 1),
      })),
      byOperation: operationSummary(requests.byOperation, input.queueLabels).map((o) => ({ ...o, perBuild: perBuild(o.count) })),
      byOperationAndQueue: requests.byOperation.map((o) => ({ ...o, target: input.queueLabels.get(o.target) ?? o.target, perBuild: perBuild(o.count) })),
      /** Requests that were refused (conditional writes that lost, …): work spent on nothing. */
      refused: requests.errors.map((e) => ({ ...e, target: input.queueLabels.get(e.target) ?? e.target, perBuild: perBuild(e.count) })),
      invocations: requests.invocations,
      perInvocation: requests.perInvocation,
    },
    baseline,
    buildsPerAgent: Object.fromEntries(agents.map((a) => [a.name, a.builds.length])),
    checks: {
      jobStatus: job.status,
      jobCounts: job.counts ?? {},
      derivationStatuses: statusCounts,
      builtExactlyOnce: notBuilt.length === 0 && builtMoreThanOnce.length === 0 && unknownBuilds.length === 0,
      notBuilt: notBuilt.slice(0, 50),
      builtMoreThanOnce: builtMoreThanOnce.slice(0, 50),
      matchingViolations: matchingViolations.slice(0, 50),
      handlerLogLines: input.logLines.length,
      handlerLogSample: input.logLines.slice(0, 20).map((l) => l.line),
      agentProblems: problems.length,
      agentProblemSample: problems.slice(0, 20),
      anomalies,
    },
  };
}
