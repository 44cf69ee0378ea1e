/**
 * One function per API endpoint the pages read or act on (README "The JSON API", and
 * docs/dashboard-api.md for the ones the dashboard added).
 */
import {
  AgentsWithTasks,
  AttributePage,
  DerivationDetail,
  DerivationPage,
  JobList,
  JobStatusView,
  JobView,
  LogPage,
  type DerivationStatus,
  type JobSummary,
} from "@nimbus/protocol";
import * as z from "zod";
import { ApiRequestError, apiGet, apiSend, isMissingEndpoint, type Cached } from "./http.ts";
import type { HashRange } from "../list/hash-ranges.ts";

const PAGE = 200;
const path = (base: string, query: Record<string, string | number | undefined>) => {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== "") params.set(name, String(value));
  const search = params.toString();
  return search ? `${base}?${search}` : base;
};
const job = (jobId: string) => `/api/jobs/${encodeURIComponent(jobId)}`;
const derivation = (drv: string) => `/api/derivations/${encodeURIComponent(drv)}`;

export interface JobFilter {
  repository?: string;
  branch?: string;
}

/** A branch name as the ref GitHub sends (`main` → `refs/heads/main`); a full ref stays as it is. */
export const branchRef = (branch: string) => (branch.startsWith("refs/") ? branch : `refs/heads/${branch}`);

/** Whether a job passes the filter (the server filters; this keeps a page right against an older server). */
export function jobMatches(job: JobSummary, filter: JobFilter): boolean {
  return (!filter.repository || job.repository === filter.repository) && (!filter.branch || job.ref === branchRef(filter.branch));
}

export async function listJobs(filter: JobFilter, cursor: string | undefined, signal?: AbortSignal, cached?: Cached<JobList>) {
  const ref = filter.branch ? branchRef(filter.branch) : undefined;
  const answer = await apiGet(path("/api/jobs", { repository: filter.repository, ref, cursor, limit: 50 }), JobList, { signal, cached });
  return { ...answer, value: { ...answer.value, jobs: answer.value.jobs.filter((j) => jobMatches(j, filter)) } };
}

export const getJob = (jobId: string, signal?: AbortSignal, cached?: Cached<JobView>) => apiGet(job(jobId), JobView, { signal, cached });

/** Set once the API said it has no summary endpoint: the full view is asked for instead. */
let summaryMissing = false;

/** The job and its counts, for polling: the summary endpoint, or the full view from an API without it. */
export async function getJobStatus(jobId: string, signal?: AbortSignal, cached?: Cached<JobStatusView>): Promise<Cached<JobStatusView>> {
  if (!summaryMissing) {
    try {
      return await apiGet(`${job(jobId)}/summary`, JobStatusView, { signal, cached });
    } catch (error) {
      if (!isMissingEndpoint(error)) throw error;
      summaryMissing = true;
    }
  }
  return getJob(jobId, signal);
}

export async function listJobDerivations(
  jobId: string,
  query: { status?: DerivationStatus; range?: HashRange; cursor?: string; limit?: number },
  signal?: AbortSignal,
) {
  const { value } = await apiGet(
    path(`${job(jobId)}/derivations`, {
      status: query.status,
      from: query.range?.from,
      to: query.range?.to,
      cursor: query.cursor,
      limit: query.limit ?? PAGE,
    }),
    DerivationPage,
    { signal },
  );
  return { items: value.derivations, cursor: value.cursor };
}

let attributesMissing = false;

/**
 * A page of a job's attributes under a path prefix. A server without the attributes endpoint
 * gets the job view's first 1000, filtered here.
 */
export async function listJobAttributes(
  jobId: string,
  query: { prefix?: string; errorsOnly?: boolean; cursor?: string; limit?: number },
  signal?: AbortSignal,
) {
  try {
    if (attributesMissing) throw new ApiRequestError("no attributes endpoint", 404, "no-route");
    const { value } = await apiGet(
      path(`${job(jobId)}/attributes`, {
        prefix: query.prefix,
        errors: query.errorsOnly ? "only" : undefined,
        cursor: query.cursor,
        limit: query.limit ?? PAGE,
      }),
      AttributePage,
      { signal },
    );
    return { items: value.attributes, cursor: value.cursor };
  } catch (error) {
    if (!isMissingEndpoint(error)) throw error;
    attributesMissing = true;
    const { value } = await getJob(jobId, signal);
    const prefix = query.prefix ?? "";
    const items = value.attributes.filter((a) => a.path.join(".").startsWith(prefix) && (!query.errorsOnly || a.status === "error"));
    return { items, cursor: undefined };
  }
}

export const cancelJob = (jobId: string) => apiSend("POST", `${job(jobId)}/cancel`, z.looseObject({ status: z.string() }));

export const rerunJob = (jobId: string, rebuildFailures: boolean) =>
  apiSend("POST", path(`${job(jobId)}/rerun`, { rebuildFailures: rebuildFailures ? "true" : undefined }), z.looseObject({ jobId: z.string() }));

export const getDerivation = (drv: string, signal?: AbortSignal, cached?: Cached<DerivationDetail>) =>
  apiGet(derivation(drv), DerivationDetail, { signal, cached });

export async function getLog(drv: string, query: { attempt?: number; before?: string; after?: string; limit?: number }, signal?: AbortSignal) {
  const { value } = await apiGet(path(`${derivation(drv)}/log`, { ...query }), LogPage, { signal });
  return value;
}

export const listAgents = (signal?: AbortSignal, cached?: Cached<AgentsWithTasks>) => apiGet("/api/agents", AgentsWithTasks, { signal, cached });
