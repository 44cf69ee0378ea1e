import { isFinalOutcome, jobCheck, jobOutcome, UNSETTLED } from "@nimbus/core";
import type { DerivationStatus, JobStatus } from "@nimbus/protocol";
import { jobDerivationRows, jobHasStatus } from "../storage/job-derivations.ts";
import { getJob, setJobStatus } from "../storage/jobs.ts";

/**
 * Finishes the job if nothing in it can still change (core `jobCheck`, `jobOutcome`). The
 * cheap index look runs on every settle; the consistent full count only when the index says
 * nothing is left (indexes may lag).
 */
export async function finishJobIfDone(jobId: string, now = new Date()): Promise<JobStatus | undefined> {
  const job = await getJob(jobId);
  const check = jobCheck(job && { status: job.status, evaluation: job.evaluation.status });
  if (!job || check === "leave") return undefined;
  if (check === "look-for-unsettled") {
    for (const status of UNSETTLED) if (await jobHasStatus(jobId, status)) return undefined;
  }
  const counts: Partial<Record<DerivationStatus, number>> = {};
  for (const row of await jobDerivationRows(jobId)) counts[row.status] = (counts[row.status] ?? 0) + 1;
  const outcome = jobOutcome({ evaluation: job.evaluation.status, attributeErrors: job.attributeErrors ?? 0, counts });
  if (!isFinalOutcome(outcome)) return undefined;
  // The consistent count just made is exact: it replaces the counts kept while the job ran.
  return (await setJobStatus(jobId, outcome, now, counts)) ? outcome : undefined;
}
