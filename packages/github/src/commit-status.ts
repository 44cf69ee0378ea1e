/**
 * A job report as one commit status (`POST /repos/{owner}/{repo}/statuses/{sha}`), for the
 * personal-token mode. One status per job, never one per attribute: per-attribute statuses
 * run into GitHub's secondary rate limit and its 1,000 statuses per commit and context.
 */
import { checkName, splitRepository, type JobReport } from "./job-report.ts";
import { truncate } from "./markdown-text.ts";
import { headline } from "./report-text.ts";

/** GitHub's limit for a status description. */
export const MAX_STATUS_DESCRIPTION = 140;

export type CommitState = "pending" | "success" | "failure" | "error";

export interface CommitStatusRequest {
  owner: string;
  repo: string;
  sha: string;
  body: { state: CommitState; target_url: string; description: string; context: string };
}

export function commitState(report: JobReport): CommitState {
  switch (report.status) {
    case "held":
    case "queued":
    case "evaluating":
    case "building":
      return "pending";
    case "succeeded":
      return "success";
    case "failed":
      return "failure";
    case "cancelled":
      return "error";
  }
}

export function commitStatusRequest(report: JobReport): CommitStatusRequest {
  const { owner, repo } = splitRepository(report.repository);
  const description =
    report.status === "held" && report.hold
      ? `Waiting for approval: a maintainer adds the label ${report.hold.approvalLabel}`
      : headline(report);
  return {
    owner,
    repo,
    sha: report.commit,
    body: {
      state: commitState(report),
      target_url: report.dashboardUrl,
      // Plain text: GitHub shows the description as it is, so only its length matters.
      description: truncate(description.replace(/\s+/g, " "), MAX_STATUS_DESCRIPTION),
      context: checkName(report),
    },
  };
}
