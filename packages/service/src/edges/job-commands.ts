/** What the JSON API may ask of a job besides reading it. */
import type { WebhookAccepted } from "@nimbus/protocol";
import { wakeIdleAgents } from "../flow/dispatch.ts";
import { cancelJob as cancelRunningJob, type CancelAnswer } from "../flow/job-cancel.ts";
import { reportChangedJobs, reportJob } from "../flow/job-reports.ts";
import { startRerun } from "../flow/job-rerun.ts";
import { WorkNotes } from "../flow/new-work.ts";
import { cancelHeldJob } from "../storage/jobs.ts";


/** `POST /api/jobs/{id}/rerun`: the same commit again as a new job, and idle agents told of its evaluation. */
export async function rerunJob(jobId: string, rebuildFailures: boolean): Promise<WebhookAccepted> {
  const work = new WorkNotes();
  const accepted = await startRerun(jobId, rebuildFailures, work);
  await wakeIdleAgents(work);
  await reportChangedJobs(work);
  return accepted;
}

/**
 * `POST /api/jobs/{id}/cancel`: a running job stops (a bounded part per call: `complete: false`
 * asks for another call); a held one is never run. GitHub hears of it.
 */
export async function cancelJob(jobId: string): Promise<CancelAnswer> {
  const now = new Date();
  const result = (await cancelHeldJob(jobId, now)) ? { id: jobId, status: "cancelled" as const, complete: true } : await cancelRunningJob(jobId, now);
  await reportJob(jobId, now);
  return result;
}
