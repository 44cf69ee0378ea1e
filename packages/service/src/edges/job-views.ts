/** What the JSON API shows of jobs: `GET /api/jobs`, `GET /api/jobs/{id}` and its summary. */
import type { JobList, JobStatusView, JobView } from "@nimbus/protocol";
import { JOB_ID_PATTERN } from "../flow/job-ids.ts";
import { jobCounts, jobSummary, jobView } from "../flow/job-view.ts";
import { badRequest, notFound } from "../platform/errors.ts";
import type { JobItem } from "../storage/items.ts";
import { getJob, JobKey, jobsInOrder } from "../storage/jobs.ts";
import { repositoryRefKey, SHARD } from "../storage/keys.ts";
import { Jobs } from "../storage/tables.ts";
import { decodeCursor, queryPage } from "./paging.ts";

export { failureView, jobSummary, MAX_VIEW_ATTRIBUTES, MAX_VIEW_FAILURES, toAttributeViews } from "../flow/job-view.ts";

/** The job, or a 404 naming where to find job ids. */
export async function requireJob(jobId: string): Promise<JobItem> {
  const job = JOB_ID_PATTERN.test(jobId) ? await getJob(jobId) : undefined;
  if (!job) throw notFound(`no job with id ${jobId} — \`nimbus jobs\` lists them`);
  return job;
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
    JobKey,
  );
  // The lists hold keys only (platform/resource-specs.ts): the page's jobs are read by key.
  return { jobs: (await jobsInOrder(items.map((key) => key.jobId))).map(jobSummary), ...(cursor ? { cursor } : {}) };
}

export async function getJobView(jobId: string): Promise<JobView> {
  return jobView(await requireJob(jobId));
}

/** `GET /api/jobs/{id}/summary`: the job and its counts, one GetItem (what the job page polls). */
export async function getJobSummary(jobId: string): Promise<JobStatusView> {
  const job = await requireJob(jobId);
  return { ...jobSummary(job), counts: await jobCounts(job) };
}
