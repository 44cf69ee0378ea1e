/** What the JSON API shows of jobs: `GET /api/jobs` and `GET /api/jobs/{id}`. */
import {
  DerivationStatus,
  type AttributeView,
  type FailureView,
  type JobList,
  type JobSummary,
  type JobView,
} from "@nimbus/protocol";
import { JOB_ID_PATTERN } from "../flow/job-ids.ts";
import { notFound } from "../platform/errors.ts";
import { getDerivations } from "../storage/derivations.ts";
import type { DerivationItem, JobDerivationItem, JobItem } from "../storage/items.ts";
import { getJob } from "../storage/jobs.ts";
import { jobStatusKey, SHARD } from "../storage/keys.ts";
import { JobAttributes, JobDerivations, Jobs } from "../storage/tables.ts";
import { decodeCursor, queryPage } from "./paging.ts";

/** JobView lists this many attributes and failures at most; the derivations endpoint pages the rest. */
export const MAX_VIEW_ATTRIBUTES = 1000;
export const MAX_VIEW_FAILURES = 100;

/** Base-table and byCreated keys: what a job list cursor holds. */
const JOB_LIST_KEY = ["jobId", "listKey", "createdAt"] as const;

/** The job, or a 404 naming where to find job ids. */
export async function requireJob(jobId: string): Promise<JobItem> {
  const job = JOB_ID_PATTERN.test(jobId) ? await getJob(jobId) : undefined;
  if (!job) throw notFound(`no job with id ${jobId} — \`nimbus jobs\` lists them`);
  return job;
}

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

/** Newest first, through the byCreated index. */
export async function listJobs(options: { cursor?: string; limit: number }): Promise<JobList> {
  const { items, cursor } = await queryPage(
    Jobs,
    {
      IndexName: "byCreated",
      KeyConditionExpression: "listKey = :job",
      ExpressionAttributeValues: { ":job": SHARD.jobList },
      ScanIndexForward: false,
    },
    JOB_LIST_KEY,
    options.limit,
    decodeCursor(options.cursor, JOB_LIST_KEY, { listKey: SHARD.jobList }),
  );
  return { jobs: items.map(jobSummary), ...(cursor ? { cursor } : {}) };
}

export async function getJobView(jobId: string): Promise<JobView> {
  const job = await requireJob(jobId);
  const [counts, attributes, failures] = await Promise.all([countByStatus(jobId), attributeViews(jobId), failureViews(jobId)]);
  return { ...jobSummary(job), counts, attributes, failures };
}

/** One COUNT query per status on byJobStatus; statuses with no derivation are left out. */
async function countByStatus(jobId: string): Promise<JobView["counts"]> {
  const counts = await Promise.all(
    DerivationStatus.options.map(async (status) => {
      const count = await JobDerivations.count({
        IndexName: "byJobStatus",
        KeyConditionExpression: "jobStatus = :key",
        ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
      });
      return [status, count] as const;
    }),
  );
  return Object.fromEntries(counts.filter(([, count]) => count > 0));
}

async function attributeViews(jobId: string): Promise<AttributeView[]> {
  const { items } = await queryPage(
    JobAttributes,
    { KeyConditionExpression: "jobId = :job", ExpressionAttributeValues: { ":job": jobId } },
    ["jobId", "attribute"],
    MAX_VIEW_ATTRIBUTES,
    undefined,
  );
  const derivations = await getDerivations(items.flatMap((a) => (a.drvPath ? [a.drvPath] : [])));
  return items.map((a) => {
    const base = { path: a.path, ...(a.drvPath ? { drvPath: a.drvPath } : {}) };
    if (a.error !== undefined) return { ...base, status: "error", error: a.error };
    // Only derivations that need building get an item: none means the outputs were already valid.
    const status = (a.drvPath && derivations.get(a.drvPath)?.status) || (a.needsBuild ? "waiting" : "cached");
    return { ...base, status };
  });
}

/** The first failed, then dependency-failed, derivations of the job. */
async function failureViews(jobId: string): Promise<FailureView[]> {
  const found: JobDerivationItem[] = [];
  for (const status of ["failed", "dependency-failed"] as const) {
    if (found.length >= MAX_VIEW_FAILURES) break;
    const { items } = await queryPage(
      JobDerivations,
      {
        IndexName: "byJobStatus",
        KeyConditionExpression: "jobStatus = :key",
        ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
      },
      ["jobId", "drvPath", "jobStatus"],
      MAX_VIEW_FAILURES - found.length,
      undefined,
    );
    found.push(...items);
  }
  const derivations = await getDerivations(found.map((d) => d.drvPath));
  return found.map((d) => failureView(d.drvPath, d.status as FailureView["status"], derivations.get(d.drvPath)));
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
