/**
 * A job as the JSON API shows it (`GET /api/jobs/{id}`, edges/job-views.ts) and as GitHub's
 * reports are made of it (flow/job-reports.ts): one view, built from the same reads.
 */
import { mustFailProblem } from "@nimbus/core";
import { AttributeType, DerivationStatus, type AttributeView, type EffectView, type FailureView, type JobSummary, type JobView } from "@nimbus/protocol";
import type { z } from "zod";
import type { TableName } from "../platform/resource-specs.ts";
import { getDerivations } from "../storage/derivations.ts";
import { jobEffects } from "../storage/effects.ts";
import type { DerivationItem, JobAttributeItem, JobDerivationItem, JobItem } from "../storage/items.ts";
import { countsExact, keptCounts, splitUnderWay } from "../storage/job-counts.ts";
import { jobRowsUnderWay } from "../storage/job-derivations.ts";
import { jobStatusKey } from "../storage/keys.ts";
import type { Query, Table } from "../storage/table.ts";
import { JobAttributes, JobDerivations } from "../storage/tables.ts";

/** JobView lists this many attributes and failures at most; the derivations endpoint pages the rest. */
export const MAX_VIEW_ATTRIBUTES = 1000;
export const MAX_VIEW_FAILURES = 100;

export function jobSummary(job: JobItem): JobSummary {
  const { evaluation } = job;
  return {
    id: job.jobId,
    repository: job.repository,
    ...(job.ref !== undefined ? { ref: job.ref } : {}),
    commit: job.commit,
    cloneUrl: job.cloneUrl,
    trigger: job.trigger,
    status: job.status,
    ...(job.untrusted ? { untrusted: true } : {}),
    ...(job.handler ? { handler: job.handler } : {}),
    ...(job.status === "held" && job.holdReason !== undefined ? { holdReason: job.holdReason } : {}),
    ...(job.status === "held" && job.approvalLabel !== undefined ? { approvalLabel: job.approvalLabel } : {}),
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    ...(job.finishedAt !== undefined ? { finishedAt: job.finishedAt } : {}),
    evaluation: {
      status: evaluation.status,
      ...(evaluation.error !== undefined ? { error: evaluation.error } : {}),
      ...(evaluation.agent !== undefined ? { agent: evaluation.agent } : {}),
      ...(evaluation.cacheProblems?.length ? { cacheProblems: evaluation.cacheProblems } : {}),
    },
  };
}

export async function jobView(job: JobItem): Promise<JobView> {
  const [counts, attributes, failures, effects] = await Promise.all([
    jobCounts(job),
    attributeViews(job.jobId),
    failureViews(job.jobId),
    job.effectCount ? effectViews(job.jobId) : undefined,
  ]);
  return { ...jobSummary(job), counts, attributes, failures, ...(effects ? { effects } : {}) };
}

async function effectViews(jobId: string): Promise<EffectView[]> {
  return (await jobEffects(jobId)).map((e) => ({
    path: e.path,
    drvPath: e.drvPath,
    status: e.status,
    ...(e.agent !== undefined ? { agent: e.agent } : {}),
    ...(e.startedAt !== undefined ? { startedAt: e.startedAt } : {}),
    ...(e.finishedAt !== undefined ? { finishedAt: e.finishedAt } : {}),
    ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
    ...(e.error !== undefined ? { error: e.error } : {}),
    ...(e.logTail !== undefined ? { logTail: e.logTail } : {}),
  }));
}

/**
 * The counts the job keeps (storage/job-counts.ts), a running job's builds under way told apart
 * from the queued and waiting ones its rows count them as (as many as slots build, not the job's
 * size); a job made before it kept them is counted from the index.
 */
export async function jobCounts(job: JobItem): Promise<JobView["counts"]> {
  const kept = keptCounts(job);
  if (!kept) return countByStatus(job.jobId);
  if (countsExact(job) || !(kept.queued || kept.waiting)) return kept;
  return splitUnderWay(kept, (await jobRowsUnderWay(job.jobId)).map((row) => row.status));
}

/** The first `limit` items of a query (DynamoDB may stop a page early at 1 MB: read on until full). */
async function firstItems<T extends TableName, S extends z.ZodType<Record<string, unknown>>>(table: Table<T, S>, input: Query<T>, limit: number): Promise<z.infer<S>[]> {
  const items: z.infer<S>[] = [];
  for await (const page of table.pages(input, table.schema, { pageSize: limit })) {
    items.push(...page.items);
    if (items.length >= limit) break;
  }
  return items.slice(0, limit);
}

/** One COUNT query per status on byJobStatus; statuses with no derivation are left out. */
async function countByStatus(jobId: string): Promise<JobView["counts"]> {
  const counts = await Promise.all(DerivationStatus.options.map(async (status) => [status, await countOfStatus(jobId, status)] as const));
  return Object.fromEntries(counts.filter(([, count]) => count > 0));
}

const countOfStatus = (jobId: string, status: DerivationStatus): Promise<number> =>
  JobDerivations.count({ IndexName: "byJobStatus", KeyConditionExpression: "jobStatus = :key", ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) } });

async function attributeViews(jobId: string): Promise<AttributeView[]> {
  const items = await firstItems(JobAttributes, { KeyConditionExpression: "jobId = :job", ExpressionAttributeValues: { ":job": jobId } }, MAX_VIEW_ATTRIBUTES);
  return toAttributeViews(items);
}

/** Attributes as the API shows them, their statuses read in one batch from Derivations. */
export async function toAttributeViews(items: readonly JobAttributeItem[]): Promise<AttributeView[]> {
  const derivations = await getDerivations(items.flatMap((a) => (a.drvPath ? [a.drvPath] : [])));
  return items.map((a): AttributeView => {
    const type = AttributeType.exclude(["regular"]).safeParse(a.attributeType);
    const base = { path: a.path, ...(a.drvPath ? { drvPath: a.drvPath } : {}), ...(type.success ? { type: type.data } : {}) };
    if (a.error !== undefined) return { ...base, status: "error", error: a.error };
    if (type.data === "effect" || type.data === "dependencies-only") return { ...base, status: "not-built" };
    // Only derivations that need building get an item: none means the outputs were already valid.
    const status = (a.drvPath && derivations.get(a.drvPath)?.status) || (a.needsBuild ? "waiting" : "cached");
    const problem = type.data === "must-fail" ? mustFailProblem(status) : undefined;
    return { ...base, status, ...(problem ? { problem } : {}) };
  });
}

/** The first failed, then dependency-failed, derivations of the job. */
async function failureViews(jobId: string): Promise<FailureView[]> {
  const found: JobDerivationItem[] = [];
  for (const status of ["failed", "dependency-failed"] as const) {
    if (found.length >= MAX_VIEW_FAILURES) break;
    const items = await firstItems(
      JobDerivations,
      {
        IndexName: "byJobStatus",
        KeyConditionExpression: "jobStatus = :key",
        ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
      },
      MAX_VIEW_FAILURES - found.length,
    );
    found.push(...items);
  }
  const derivations = await getDerivations(found.map((d) => d.drvPath));
  return found.map((d) => ({
    ...failureView(d.drvPath, d.status as FailureView["status"], derivations.get(d.drvPath)),
    ...(d.excused ? { excused: d.excused } : {}),
  }));
}

export function failureView(drvPath: string, status: FailureView["status"], drv: DerivationItem | undefined): FailureView {
  const failure = drv?.failure;
  return {
    drvPath,
    status,
    reason: failure?.reason ?? (status === "failed" ? "the build failed" : "an input derivation failed"),
    ...(failure?.exitCode !== undefined ? { exitCode: failure.exitCode } : {}),
    ...(failure?.logTail ? { logTail: failure.logTail } : {}),
    ...(failure?.dependency ? { dependency: failure.dependency } : {}),
  };
}
