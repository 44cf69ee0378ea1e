import type { WebhookAccepted } from "@nimbus/protocol";
import { notFound } from "./errors.ts";
import { newJobId } from "./job-ids.ts";
import { startJob } from "./job-start.ts";
import { getJob } from "./jobs.ts";

/**
 * Runs a job's commit again as a new job. Cached failures stay failed unless
 * `rebuildFailures`, which starts them (and their dependents) over.
 */
export async function rerunJob(jobId: string, rebuildFailures: boolean, now = new Date()): Promise<WebhookAccepted> {
  const job = await getJob(jobId);
  if (!job) throw notFound(`no job ${jobId} — list jobs with \`nimbus jobs\``);
  const id = newJobId(now);
  await startJob(
    id,
    {
      repository: job.repository,
      ...(job.ref ? { ref: job.ref } : {}),
      commit: job.commit,
      cloneUrl: job.cloneUrl,
      trigger: { event: "rerun", rerunOf: jobId, rebuildFailures },
    },
    now.toISOString(),
  );
  return { jobId: id, redelivery: false };
}
