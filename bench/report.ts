/** How a run is shown: a few lines on stdout and bench/results/latest.json. */
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RunResult } from "./analysis.ts";
import type { CounterReport } from "./request-counter.ts";

const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));

export function printReport(output: RunResult & { wallSeconds: number }, requests: CounterReport): void {
  const b = output.baseline;
  const ms = (n: number) => `${n.toFixed(2)} ms`;
  const t = output.timeline;
  console.log("");
  console.log(
    `  baseline           SQS send+receive+delete mean ${ms(b.sqsSendReceiveDeleteMs.mean)} p50 ${ms(b.sqsSendReceiveDeleteMs.p50)}; ` +
      `DynamoDB conditional put mean ${ms(b.dynamodbConditionalPutMs.mean)} p50 ${ms(b.dynamodbConditionalPutMs.p50)}`,
  );
  console.log(
    `  evaluation         ${t.evaluation?.events} events in ${t.evaluation?.batches} batches ingested in ${output.evaluationSeconds} s ` +
      `(evaluate task ${t.webhookToEvaluateMs} ms after the webhook)`,
  );
  console.log(
    `  builds             ${output.builds} in ${output.buildSeconds} s → ${output.buildsPerSecond} builds/s ` +
      `(first ${t.webhookToFirstBuildMs} ms after the webhook; ${t.buildsDuringIngest} during ingest; ${t.buildsPerSecondAfterIngest} builds/s after it)`,
  );
  console.log(`  total              ${output.totalSeconds} s from webhook to job ${output.checks.jobStatus}; wall ${output.wallSeconds} s`);
  console.log(
    `  dispatch latency   p50 ${output.dispatchLatencyMs.p50} ms, p95 ${output.dispatchLatencyMs.p95} ms, p99 ${output.dispatchLatencyMs.p99} ms, ` +
      `max ${output.dispatchLatencyMs.max} ms (after ingest: p50 ${output.dispatchLatencyAfterIngestMs.p50}, p95 ${output.dispatchLatencyAfterIngestMs.p95})`,
  );
  console.log(
    `  by queue           ${Object.entries(output.dispatchLatencyByQueueMs)
      .map(([queue, l]) => `${queue} p50 ${l.p50} p95 ${l.p95}`)
      .join("; ")}`,
  );
  const r = output.requestsPerBuild;
  console.log(`  requests per build DynamoDB ${r.dynamodb}, SQS ${r.sqs}, gateway ${r.gateway}, total ${r.total} ` +
    `(${requests.counted.total} requests; ${requests.excluded.total} of the bench's own left out)`);
  console.log("  by source (per build; per invocation):");
  for (const s of output.requests.perBuildBySource.slice(0, 8)) {
    console.log(`    ${s.source.padEnd(36)} ${String(s.total).padStart(7)}  (${s.invocations} calls, ${s.perInvocation} each; ddb ${s.dynamodb}, sqs ${s.sqs}, gw ${s.gateway})`);
  }
  console.log("  by operation (per build):");
  for (const o of output.requests.byOperation.slice(0, 14)) {
    console.log(`    ${`${o.client} ${o.operation}`.padEnd(34)} ${o.target.padEnd(36)} ${String(o.perBuild).padStart(6)}`);
  }
  if (output.requests.refused.length) {
    console.log("  refused requests (per build):");
    for (const e of output.requests.refused.slice(0, 6)) {
      console.log(`    ${`${e.client} ${e.operation}`.padEnd(34)} ${e.target.padEnd(36)} ${String(e.perBuild).padStart(6)}  ${e.error}`);
    }
  }
  for (const i of output.requests.perInvocation.filter((x) => x.refused.max > 0)) {
    console.log(
      `  ${i.source}: requests per invocation p50 ${i.requests.p50}, p95 ${i.requests.p95}, max ${i.requests.max}; ` +
        `refused per invocation p50 ${i.refused.p50}, p95 ${i.refused.p95}, max ${i.refused.max}`,
    );
  }
  console.log(`  builds per agent   ${Object.entries(output.buildsPerAgent).map(([n, c]) => `${n} ${c}`).join(", ")}`);
  if (output.checks.anomalies.length === 0) {
    console.log(`  checks             every derivation built exactly once, by an agent allowed to; no handler errors`);
  } else {
    for (const anomaly of output.checks.anomalies) console.log(`  WARNING: ${anomaly}`);
  }
}

/** Writes bench/results/latest.json (the folder is created; it is git-ignored). */
export async function writeResults(output: object): Promise<void> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, "latest.json");
  await writeFile(path, `${JSON.stringify(output, null, 2)}\n`);
  console.log(`\nresults: ${path}`);
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    totalMemoryMB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}
