/**
 * The thin I/O around report-decision.ts: performs the one request it chose and turns
 * GitHub's answer into an outcome. `deliverReport` is what the service calls whenever a
 * job changes and when a stored `next` time comes due.
 */
import { RequestError } from "@octokit/request-error";
import { NotInstalledError, type GithubClient, type RestOctokit } from "./client.ts";
import type { JobReport } from "./job-report.ts";
import {
  afterSend,
  decideReport,
  DEFAULT_REPORT_SETTINGS,
  type ReportMode,
  type ReportRequest,
  type ReportSettings,
  type ReportState,
  type SendOutcome,
} from "./report-decision.ts";
import { classifyFailure, type FailedRequest } from "./request-failures.ts";
import type { Permissions } from "./token-cache.ts";

export const REPORT_PERMISSIONS: Record<ReportMode, Permissions> = {
  checks: { checks: "write" },
  statuses: { statuses: "write" },
};

export interface Reporter {
  readonly mode: ReportMode;
  /** Performs one request; never throws for anything GitHub or the network does. */
  send(request: ReportRequest, attempt: number, installationId?: number): Promise<SendOutcome>;
}

export function createReporter(client: GithubClient, options: { now?: () => Date } = {}): Reporter {
  const now = options.now ?? (() => new Date());
  const mode: ReportMode = client.mode === "app" ? "checks" : "statuses";
  return {
    mode,
    async send(request, attempt, installationId) {
      const { owner, repo } = request.request;
      let stage: FailedRequest["request"] = "auth";
      try {
        const octokit = await client.forRepository({ owner, repo, ...(installationId ? { installationId } : {}) }, REPORT_PERMISSIONS[mode]);
        stage = request.type;
        return { type: "sent", ...(await perform(octokit, request)) };
      } catch (error) {
        if (error instanceof NotInstalledError) return { type: "failed", failure: { type: "permanent", reason: error.message } };
        const failed = failedRequest(error, stage);
        // A token GitHub no longer takes (revoked, or the installation changed): mint anew next time.
        if (failed.status === 401) client.forget({ repository: `${owner}/${repo}` });
        return { type: "failed", failure: classifyFailure(failed, now().getTime(), attempt) };
      }
    },
  };
}

async function perform(octokit: RestOctokit, send: ReportRequest): Promise<{ checkRunId?: number }> {
  switch (send.type) {
    case "commit-status": {
      const { owner, repo, sha, body } = send.request;
      await octokit.rest.repos.createCommitStatus({ owner, repo, sha, ...body });
      return {};
    }
    case "update-check-run": {
      const { owner, repo, check_run_id, body } = send.request;
      await octokit.rest.checks.update({ owner, repo, check_run_id, ...body });
      return { checkRunId: check_run_id };
    }
    case "create-check-run": {
      const { owner, repo, body } = send.request;
      // An earlier attempt may have created it and died before its id was stored: adopt that run
      // (unless it is completed: a held fork's run is replaced, not reopened, once approved).
      const existing = await findCheckRun(octokit, owner, repo, body.head_sha, body.name, body.external_id);
      if (existing !== undefined) {
        const { head_sha: _sha, ...fields } = body;
        await octokit.rest.checks.update({ owner, repo, check_run_id: existing, ...fields });
        return { checkRunId: existing };
      }
      const { data } = await octokit.rest.checks.create({ owner, repo, ...body });
      return { checkRunId: Number(data.id) };
    }
  }
}

async function findCheckRun(octokit: RestOctokit, owner: string, repo: string, sha: string, name: string, externalId: string): Promise<number | undefined> {
  const { data } = await octokit.rest.checks.listForRef({ owner, repo, ref: sha, check_name: name, filter: "all", per_page: 100 });
  const run = data.check_runs.find((r) => r.external_id === externalId && r.status !== "completed");
  return run ? Number(run.id) : undefined;
}

function failedRequest(error: unknown, request: FailedRequest["request"]): FailedRequest {
  // Octokit reports a request that got no answer (refused, reset, timed out) as a 500 without a response.
  if (error instanceof RequestError && error.response) {
    const data = error.response.data as { message?: unknown } | undefined;
    const message = typeof data?.message === "string" ? data.message : error.message;
    return { status: error.status, headers: error.response.headers, message, request };
  }
  return { message: error instanceof Error ? error.message : String(error), request };
}

export interface Delivery {
  /** Store this (a conditional write on the job's report item). */
  state: ReportState;
  /** Call `deliverReport` again at this time (the sweeper picks it up), unless the job changes first. */
  next?: Date;
  /** What happened, one line per step, for logs (no tokens, no bodies). */
  notes: string[];
}

/**
 * Brings GitHub up to date with `report` as far as is allowed now: skips what GitHub already
 * shows, waits out throttles and rate limits by returning `next`, retries by returning `next`,
 * and makes a new check run when the old one is gone — never sleeping.
 */
export async function deliverReport(
  reporter: Reporter,
  report: JobReport,
  state: ReportState,
  options: { now?: Date; settings?: ReportSettings; installationId?: number } = {},
): Promise<Delivery> {
  const now = options.now ?? new Date();
  const settings = options.settings ?? DEFAULT_REPORT_SETTINGS;
  const notes: string[] = [];
  let current = state;
  // A recreate asks for a second request at once; nothing needs more.
  for (let step = 0; step < 3; step++) {
    const decision = decideReport(reporter.mode, report, current, now, settings);
    if (decision.type === "skip") {
      notes.push(decision.reason);
      return { state: current, notes };
    }
    if (decision.type === "wait") {
      notes.push(decision.reason);
      return { state: current, next: decision.until, notes };
    }
    const outcome = await reporter.send(decision.send, current.failures, options.installationId);
    const after = afterSend(current, report, decision, outcome, now);
    notes.push(after.note);
    current = after.state;
    if (!after.next || after.next.getTime() > now.getTime()) return { state: current, ...(after.next ? { next: after.next } : {}), notes };
  }
  return { state: current, next: now, notes };
}
