/** What the JSON API shows of jobs: `GET /api/jobs` and `GET /api/jobs/{id}`. */
import type { JobList, JobView } from "@nimbus/protocol";
import { JOB_ID_PATTERN } from "../flow/job-ids.ts";
import { jobSummary, jobView } from "../flow/job-view.ts";
import { notFound } from "../platform/errors.ts";
import type { JobItem } from "../storage/items.ts";
import { getJob } from "../storage/jobs.ts";
import { SHARD } from "../storage/keys.ts";
import { Jobs } from "../storage/tables.ts";
import { decodeCursor, queryPage } from "./paging.ts";

export { failureView, jobSummary, MAX_VIEW_ATTRIBUTES, MAX_VIEW_FAILURES } from "../flow/job-view.ts";

/** Base-table and byCreated keys: what a job list cursor holds. */
const JOB_LIST_KEY = ["jobId", "listKey", "createdAt"] as const;

/** The job, or a 404 naming where to find job ids. */
export async function requireJob(jobId: string): Promise<JobItem> {
  const job = JOB_ID_PATTERN.test(jobId) ? await getJob(jobId) : undefined;
  if (!job) throw notFound(`no job with id ${jobId} — \`nimbus jobs\` lists them`);
  return job;
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
  return jobView(await requireJob(jobId));
}
