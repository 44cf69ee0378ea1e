/**
 * Pull requests' jobs (docs/github.md, "Pull requests from forks"): a fork's commit is held
 * until someone with write access approves it; closing a pull request cancels its jobs.
 * @nimbus/github decides who may approve what; this looks permissions up and moves the jobs.
 */
import { decideApproval, repositoryPermission, splitRepository, startsWithoutApproval, type RepositoryPermission } from "@nimbus/github";
import { isActiveJob } from "@nimbus/core";
import { github } from "../platform/github.ts";
import { cancelHeldJob, heldJobsOf, pullRequestJobs, releaseHeldJob } from "../storage/jobs.ts";
import { cancelJob } from "./job-cancel.ts";
import { queueEvaluation } from "./job-start.ts";
import type { WorkNotes } from "./new-work.ts";

export interface Approval {
  repository: string;
  commit: string;
  approver: string;
  pullRequest?: number;
  /** The held job the check run's button was on. */
  jobId?: string;
  installationId?: number;
}

/**
 * What `user` may do in `repository`, as GitHub says; undefined when it cannot be asked
 * (reporting is off) or did not answer — which, for approvals, means no.
 */
export async function permissionOf(repository: string, user: string, installationId?: number): Promise<RepositoryPermission | undefined> {
  const client = github().reporting?.client;
  if (!client) return undefined;
  try {
    return await repositoryPermission(client, { ...splitRepository(repository), ...(installationId !== undefined ? { installationId } : {}) }, user);
  } catch (error) {
    console.error(`cannot look up ${user}'s permission on ${repository}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/** Whether a fork's pull request by `author` may start at once (they could push to the repository anyway). */
export async function authorMayStart(repository: string, author: string, installationId?: number): Promise<boolean> {
  const permission = await permissionOf(repository, author, installationId);
  return permission !== undefined && startsWithoutApproval(permission);
}

/** Releases the held jobs an approval covers: they run, still untrusted. Returns their ids, or why none. */
export async function approveHeldJobs(approval: Approval, work: WorkNotes, now: Date): Promise<{ jobIds: string[]; note?: string }> {
  const permission = await permissionOf(approval.repository, approval.approver, approval.installationId);
  if (permission === undefined) {
    return { jobIds: [], note: `cannot look up ${approval.approver}'s permission on ${approval.repository} (GitHub reporting is off or GitHub did not answer); approve again later` };
  }
  const held = (await heldJobsOf(approval.repository, approval.commit)).map((job) => ({
    jobId: job.jobId,
    repository: job.repository,
    commit: job.commit,
    ...(job.trigger.pullRequest !== undefined ? { pullRequest: job.trigger.pullRequest } : {}),
  }));
  const decision = decideApproval(approval, permission, held);
  if (decision.type === "refuse") return { jobIds: [], note: decision.reason };
  const released: string[] = [];
  for (const jobId of decision.jobIds) {
    // Conditional on `held`: a second approval (a redelivery, the label and the button) starts nothing twice.
    if (!(await releaseHeldJob(jobId, approval.approver, now))) continue;
    await queueEvaluation(jobId, work);
    work.addChangedJob(jobId);
    released.push(jobId);
  }
  return { jobIds: released };
}

/** Cancels the running and held jobs of a pull request that was closed. */
export async function cancelPullRequestJobs(repository: string, pullRequest: number, work: WorkNotes, now: Date): Promise<string[]> {
  const cancelled: string[] = [];
  for (const job of await pullRequestJobs(repository, pullRequest)) {
    if (job.status === "held") {
      if (await cancelHeldJob(job.jobId, now)) cancelled.push(job.jobId);
    } else if (isActiveJob(job.status)) {
      try {
        await cancelJob(job.jobId);
        cancelled.push(job.jobId);
      } catch {
        // It ended meanwhile: nothing to cancel.
      }
    }
  }
  for (const jobId of cancelled) work.addChangedJob(jobId);
  return cancelled;
}
