/**
 * A push's `herculesCI.onPush` handlers, one job each (docs/effects.md): the push's first job
 * evaluates one handler and names them all; the others become jobs of their own, made once
 * (their ids follow from the first job's and the handler's place), each evaluated for its
 * handler and reported under its own name.
 */
import type { JobConfig } from "@nimbus/protocol";
import type { JobItem } from "../storage/items.ts";
import type { WorkNotes } from "./new-work.ts";
import { startJob, type JobRequest } from "./job-start.ts";

/** The job of the push's `index`-th `onPush` handler (in name order), beside the first job. */
export const handlerJobId = (pushJobId: string, index: number) => `${pushJobId}-${index}`;

/** Starts a job for every `onPush` handler but the one the first job walked; a second call makes nothing new. */
export async function startHandlerJobs(job: JobItem, config: JobConfig, work: WorkNotes, now: Date): Promise<string[]> {
  // Only the push's first job names the handlers; a job made for one (or a rerun of one) evaluates that one alone.
  if (job.handler !== undefined || job.pushJobId !== undefined) return [];
  const made: string[] = [];
  for (const [index, name] of config.onPush.entries()) {
    if (name === config.walked) continue;
    const id = handlerJobId(job.jobId, index);
    await startJob(id, { ...sameCommit(job), handler: { kind: "onPush", name }, pushJobId: job.jobId }, now.toISOString(), work);
    made.push(id);
  }
  return made;
}

/** What a job of the same push shares with the first: the commit, the trigger, GitHub's standing. */
function sameCommit(job: JobItem): JobRequest {
  return {
    repository: job.repository,
    ...(job.ref !== undefined ? { ref: job.ref } : {}),
    commit: job.commit,
    cloneUrl: job.cloneUrl,
    trigger: job.trigger,
    github: { onGithub: job.onGithub ?? false, private: job.private ?? false, ...(job.installationId !== undefined ? { installationId: job.installationId } : {}) },
    ...(job.untrusted ? { untrusted: true } : {}),
    ...(job.defaultBranch ? { defaultBranch: job.defaultBranch } : {}),
  };
}
