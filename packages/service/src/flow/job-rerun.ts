import type { WebhookAccepted } from "@nimbus/protocol";
import { notFound } from "../platform/errors.ts";
import { getJob } from "../storage/jobs.ts";
import { newJobId } from "./job-ids.ts";
import { startJob } from "./job-start.ts";
import type { WorkNotes } from "./new-work.ts";

/**
 * Runs a job's commit again as a new job. Cached failures stay failed unless
 * `rebuildFailures`, which starts them (and their dependents) over.
 */
export async function startRerun(
  jobId: string,
  rebuildFailures: boolean,
  work: WorkNotes,
  now = new Date(),
  options: { id?: string; sender?: string } = {},
): Promise<WebhookAccepted> {
  const job = await getJob(jobId);
  if (!job) throw notFound(`no job ${jobId} — list jobs with \`nimbus jobs\``);
  const id = options.id ?? newJobId(now);
  await startJob(
    id,
    {
      repository: job.repository,
      ...(job.ref ? { ref: job.ref } : {}),
      commit: job.commit,
      cloneUrl: job.cloneUrl,
      trigger: {
        event: "rerun",
        rerunOf: jobId,
        rebuildFailures,
        ...(options.sender ? { sender: options.sender } : {}),
        ...(job.trigger.pullRequest !== undefined ? { pullRequest: job.trigger.pullRequest } : {}),
      },
      // The same commit, so the same standing: a fork's stays untrusted, a private one's is fetched with a token.
      github: { onGithub: job.onGithub ?? false, private: job.private ?? false, ...(job.installationId !== undefined ? { installationId: job.installationId } : {}) },
      ...(job.untrusted ? { untrusted: true } : {}),
    },
    now.toISOString(),
    work,
  );
  return { jobId: id, redelivery: false };
}
