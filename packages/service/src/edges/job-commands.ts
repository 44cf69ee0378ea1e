/** What the JSON API may ask of a job besides reading it. */
import type { WebhookAccepted } from "@nimbus/protocol";
import { wakeIdleAgents } from "../flow/dispatch.ts";
import { startRerun } from "../flow/job-rerun.ts";
import { WorkNotes } from "../flow/new-work.ts";

export { cancelJob, CANCEL_ROWS_PER_CALL } from "../flow/job-cancel.ts";

/** `POST /api/jobs/{id}/rerun`: the same commit again as a new job, and idle agents told of its evaluation. */
export async function rerunJob(jobId: string, rebuildFailures: boolean): Promise<WebhookAccepted> {
  const work = new WorkNotes();
  const accepted = await startRerun(jobId, rebuildFailures, work);
  await wakeIdleAgents(work);
  return accepted;
}
