/**
 * Who may let a fork's pull request run, and which commit their approval covers
 * (docs/github.md, "Pull requests from forks"). Pure: the service looks the approver's
 * permission up (repository-permission.ts) and keeps held jobs in its tables.
 */

/** `permission` of `GET /repos/{owner}/{repo}/collaborators/{username}/permission` (maintain reads as write, triage as read). */
export type RepositoryPermission = "admin" | "write" | "read" | "none";

/**
 * Write access, and no less: GitHub lets the triage role add labels too, so holding a label
 * proves nothing by itself.
 */
export function mayApprove(permission: RepositoryPermission): boolean {
  return permission === "admin" || permission === "write";
}

/** A held job as the service keeps it: enough to match an approval against. */
export interface HeldJob {
  jobId: string;
  repository: string;
  commit: string;
  pullRequest?: number;
}

export interface ForkApproval {
  repository: string;
  commit: string;
  approver: string;
  pullRequest?: number;
  /** The held job the check-run button was on. */
  jobId?: string;
}

export type ApprovalDecision =
  | { type: "approve"; jobIds: string[] }
  | { type: "refuse"; reason: string };

/**
 * The held jobs an approval releases: those of its repository with exactly its commit (and
 * its pull request or job, when it names one). A later push is a new commit, held anew, and
 * needs an approval of its own; so does the same commit in another repository.
 */
export function decideApproval(approval: ForkApproval, approverPermission: RepositoryPermission, held: readonly HeldJob[]): ApprovalDecision {
  if (!mayApprove(approverPermission)) {
    return {
      type: "refuse",
      reason: `${approval.approver} has ${approverPermission} access to ${approval.repository}; approving a fork's commit takes write access`,
    };
  }
  const jobIds = held
    .filter(
      (job) =>
        job.repository === approval.repository &&
        job.commit === approval.commit &&
        (approval.pullRequest === undefined || job.pullRequest === approval.pullRequest) &&
        (approval.jobId === undefined || job.jobId === approval.jobId),
    )
    .map((job) => job.jobId);
  if (jobIds.length === 0) {
    return { type: "refuse", reason: `no job of ${approval.repository} is waiting for approval of commit ${approval.commit}` };
  }
  return { type: "approve", jobIds };
}

/**
 * A fork's pull request by someone who could push to the repository anyway starts at once —
 * still as a fork: without secrets and effects.
 */
export function startsWithoutApproval(authorPermission: RepositoryPermission): boolean {
  return mayApprove(authorPermission);
}
