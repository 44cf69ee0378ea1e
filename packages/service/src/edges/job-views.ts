/** What the JSON API shows of jobs: `GET /api/jobs` and `GET /api/jobs/{id}`. */
import {
  DerivationStatus,
  type AttributeView,
  type FailureView,
  type JobList,
  type JobStatusView,
  type JobSummary,
  type JobView,
} from "@nimbus/protocol";
import { JOB_ID_PATTERN } from "../flow/job-ids.ts";
import { badRequest, notFound } from "../platform/errors.ts";
import { getDerivations } from "../storage/derivations.ts";
import type { DerivationItem, JobAttributeItem, JobDerivationItem, JobItem } from "../storage/items.ts";
import { keptCounts } from "../storage/job-counts.ts";
import { getJob } from "../storage/jobs.ts";
import { jobStatusKey, repositoryRefKey, SHARD } from "../storage/keys.ts";
import { JobAttributes, JobDerivations, Jobs } from "../storage/tables.ts";
import { decodeCursor, queryPage } from "./paging.ts";

/** JobView lists this many attributes and failures at most; the derivations endpoint pages the rest. */
export const MAX_VIEW_ATTRIBUTES = 1000;
export const MAX_VIEW_FAILURES = 100;

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
    },
  };
}

export interface JobFilter {
  /** Exact `repository`. */
  repository?: string;
  /** Exact ref (`refs/heads/main`); needs `repository`. */
  ref?: string;
}

/** The filter of `GET /api/jobs`'s query, checked. */
export function parseJobFilter(query: Record<string, string | undefined>): JobFilter {
  const repository = query.repository || undefined;
  const ref = query.ref || undefined;
  if (repository !== undefined && repository.length > 200) throw badRequest("repository must be at most 200 characters (owner/name)");
  if (ref !== undefined) {
    if (!repository) throw badRequest("ref needs repository: a ref is filtered within one repository");
    if (!ref.startsWith("refs/") || ref.length > 255) throw badRequest("ref must be a full ref such as refs/heads/main (at most 255 characters)");
  }
  return { ...(repository ? { repository } : {}), ...(ref ? { ref } : {}) };
}

/** Newest first: through byCreated, or byRepository / byRepositoryRef when filtered. */
export async function listJobs(options: { cursor?: string; limit: number; filter?: JobFilter }): Promise<JobList> {
  const { repository, ref } = options.filter ?? {};
  const [index, hashKey, value] = ref
    ? (["byRepositoryRef", "repositoryRef", repositoryRefKey(repository!, ref)] as const)
    : repository
      ? (["byRepository", "repository", repository] as const)
      : (["byCreated", "listKey", SHARD.jobList] as const);
  const keys = ["jobId", hashKey, "createdAt"] as const;
  const { items, cursor } = await queryPage(
    Jobs,
    {
      IndexName: index,
      KeyConditionExpression: "#key = :value",
      ExpressionAttributeNames: { "#key": hashKey },
      ExpressionAttributeValues: { ":value": value },
      ScanIndexForward: false,
    },
    keys,
    options.limit,
    decodeCursor(options.cursor, keys, { [hashKey]: value }),
  );
  return { jobs: items.map(jobSummary), ...(cursor ? { cursor } : {}) };
}

export async function getJobView(jobId: string): Promise<JobView> {
  const job = await requireJob(jobId);
  const [counts, attributes, failures] = await Promise.all([jobCounts(job), attributeViews(jobId), failureViews(jobId)]);
  return { ...jobSummary(job), counts, attributes, failures };
}

/** `GET /api/jobs/{id}/summary`: the job and its counts, one GetItem (what the job page polls). */
export async function getJobSummary(jobId: string): Promise<JobStatusView> {
  const job = await requireJob(jobId);
  return { ...jobSummary(job), counts: await jobCounts(job) };
}

/** The counts the job keeps; a job made before it kept them is counted from the index. */
const jobCounts = async (job: JobItem): Promise<JobView["counts"]> => keptCounts(job) ?? countByStatus(job.jobId);

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
  return toAttributeViews(items);
}

/** Attributes as the API shows them, their statuses read in one batch from Derivations. */
export async function toAttributeViews(items: readonly JobAttributeItem[]): Promise<AttributeView[]> {
  const derivations = await getDerivations(items.flatMap((a) => (a.drvPath ? [a.drvPath] : [])));
  return items.map((a): AttributeView => {
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
