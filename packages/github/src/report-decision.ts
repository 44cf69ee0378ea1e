/**
 * Which request, if any, brings GitHub up to date with a job's latest report, and what to
 * remember afterwards. Pure: the service stores `ReportState` beside the job and calls
 * reporter.ts, which performs the request. Nothing here sleeps: a rate limit or a throttle
 * becomes "come back at T", and the service calls again then (or on the job's next change).
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import {
  checkRunFields,
  createCheckRunRequest,
  DEFAULT_SUMMARY_LIMITS,
  updateCheckRunRequest,
  type CreateCheckRunRequest,
  type SummaryLimits,
  type UpdateCheckRunRequest,
} from "./check-run.ts";
import { commitStatusRequest, type CommitStatusRequest } from "./commit-status.ts";
import { isTerminal, type JobReport } from "./job-report.ts";
import { transientBackoffMs, type FailureClass } from "./request-failures.ts";

/** What the service keeps per job between calls (a few hundred bytes; no token, no report body). */
export const ReportState = z.strictObject({
  /** App mode: the job's check run, once created. */
  checkRunId: z.int().positive().optional(),
  lastSentVersion: z.int().nonnegative().optional(),
  /** Hash of the last body GitHub accepted: an unchanged report is not sent again. */
  lastSentDigest: z.string().optional(),
  lastSentAt: z.iso.datetime().optional(),
  /** The check run GitHub shows is completed (a verdict, or a held fork's "action required"). */
  lastSentCompleted: z.boolean().optional(),
  /** Failed attempts in a row (for back-off). */
  failures: z.int().nonnegative().default(0),
  /** Nothing is sent before this (a rate limit or a back-off). */
  retryAt: z.iso.datetime().optional(),
  /** The last failure, for the dashboard and logs. */
  lastError: z.string().optional(),
  /** A permanent failure: reports up to this version are not tried again. */
  gaveUp: z.strictObject({ version: z.int().nonnegative(), reason: z.string() }).optional(),
});
export type ReportState = z.infer<typeof ReportState>;
export const INITIAL_REPORT_STATE: ReportState = { failures: 0 };

/** Check runs (App mode) or commit statuses (token mode). */
export type ReportMode = "checks" | "statuses";

export interface ReportSettings {
  /** While a job runs, updates are at least this far apart… */
  minUpdateIntervalMs: number;
  /** …and, for long jobs, up to this far apart (a tenth of the job's age in between). */
  maxUpdateIntervalMs: number;
  summaryLimits: SummaryLimits;
}

export const DEFAULT_REPORT_SETTINGS: ReportSettings = {
  minUpdateIntervalMs: 10_000,
  maxUpdateIntervalMs: 60_000,
  summaryLimits: DEFAULT_SUMMARY_LIMITS,
};

export type ReportRequest =
  | { type: "create-check-run"; request: CreateCheckRunRequest }
  | { type: "update-check-run"; request: UpdateCheckRunRequest }
  | { type: "commit-status"; request: CommitStatusRequest };

export type ReportDecision =
  | { type: "skip"; reason: string }
  | { type: "wait"; until: Date; reason: string }
  | { type: "send"; send: ReportRequest; digest: string };

export type SendOutcome = { type: "sent"; checkRunId?: number } | { type: "failed"; failure: FailureClass };

/**
 * How far apart updates of a running job are: `min` at first, then a tenth of the job's age,
 * at most `max` — a long job makes fewer requests, which keeps many jobs under GitHub's
 * secondary limit on content-creating requests.
 */
export function updateInterval(job: { createdAt: string }, now: Date, settings: ReportSettings): number {
  const age = now.getTime() - Date.parse(job.createdAt);
  return Math.min(settings.maxUpdateIntervalMs, Math.max(settings.minUpdateIntervalMs, Math.floor(age / 10)));
}

/**
 * When a report of this job may next be sent, from the stored state and two fields of the job:
 * lets the service skip building the job's full view while nothing could be sent. It matches
 * decideReport's wait, except after a check run was lost, when it may be up to one update
 * interval later than needed.
 */
export function earliestSend(
  state: ReportState,
  job: { createdAt: string; final: boolean },
  now: Date,
  settings: ReportSettings = DEFAULT_REPORT_SETTINGS,
): Date {
  let at = now.getTime();
  if (state.retryAt) at = Math.max(at, Date.parse(state.retryAt));
  // A running job whose check run is completed (an approved fork's) gets a new run at once.
  if (!job.final && state.lastSentAt && state.lastSentCompleted !== true) {
    at = Math.max(at, Date.parse(state.lastSentAt) + updateInterval(job, now, settings));
  }
  return new Date(at);
}

/** The request that would bring GitHub up to date, before any throttling. */
export function reportRequest(mode: ReportMode, report: JobReport, state: ReportState, settings: ReportSettings): { send: ReportRequest; digest: string } {
  if (mode === "statuses") {
    const request = commitStatusRequest(report);
    return { send: { type: "commit-status", request }, digest: digest(request.body) };
  }
  const fields = checkRunFields(report, settings.summaryLimits);
  // A completed run is not reopened: an approved fork's job runs under a new check run.
  const reopening = state.lastSentCompleted === true && fields.status !== "completed";
  const send: ReportRequest =
    state.checkRunId === undefined || reopening
      ? { type: "create-check-run", request: createCheckRunRequest(report, settings.summaryLimits) }
      : { type: "update-check-run", request: updateCheckRunRequest(report, state.checkRunId, settings.summaryLimits) };
  return { send, digest: digest(fields) };
}

export function decideReport(
  mode: ReportMode,
  report: JobReport,
  state: ReportState,
  now: Date,
  settings: ReportSettings = DEFAULT_REPORT_SETTINGS,
): ReportDecision {
  if (state.lastSentVersion !== undefined && report.version < state.lastSentVersion) {
    return { type: "skip", reason: `superseded: version ${state.lastSentVersion} was already sent` };
  }
  if (state.gaveUp && report.version <= state.gaveUp.version) {
    return { type: "skip", reason: `gave up on version ${state.gaveUp.version}: ${state.gaveUp.reason}` };
  }
  const { send, digest: bodyDigest } = reportRequest(mode, report, state, settings);
  const known = send.type !== "create-check-run";
  if (known && bodyDigest === state.lastSentDigest) return { type: "skip", reason: "GitHub already shows this report" };

  if (state.retryAt && Date.parse(state.retryAt) > now.getTime()) {
    return { type: "wait", until: new Date(state.retryAt), reason: `waiting out ${state.lastError ?? "a failure"}` };
  }
  // The first report and the verdict go at once; progress in between at most every interval.
  const final = isTerminal(report.status) || report.status === "held";
  if (!final && known && state.lastSentAt) {
    const due = Date.parse(state.lastSentAt) + updateInterval(report, now, settings);
    if (due > now.getTime()) return { type: "wait", until: new Date(due), reason: "throttled: the job is still running" };
  }
  return { type: "send", send, digest: bodyDigest };
}

/** The state after a send, and when to call again (none: on the job's next change). */
export function afterSend(
  state: ReportState,
  report: JobReport,
  sent: { send: ReportRequest; digest: string },
  outcome: SendOutcome,
  now: Date,
): { state: ReportState; next?: Date; note: string } {
  if (outcome.type === "sent") {
    const { retryAt: _retryAt, lastError: _lastError, gaveUp: _gaveUp, ...rest } = state;
    const checkRunId = outcome.checkRunId ?? state.checkRunId;
    return {
      state: {
        ...rest,
        ...(checkRunId !== undefined ? { checkRunId } : {}),
        lastSentVersion: report.version,
        lastSentDigest: sent.digest,
        lastSentAt: now.toISOString(),
        ...(sent.send.type !== "commit-status" ? { lastSentCompleted: sent.send.request.body.status === "completed" } : {}),
        failures: 0,
      },
      note: `sent ${sent.send.type} for version ${report.version}`,
    };
  }
  const { failure } = outcome;
  switch (failure.type) {
    case "rate-limited":
    case "transient": {
      const wait = failure.type === "rate-limited" ? failure.retryAfterMs : transientBackoffMs(state.failures);
      const next = new Date(now.getTime() + wait);
      return {
        state: { ...state, failures: state.failures + 1, retryAt: next.toISOString(), lastError: failure.reason },
        next,
        note: `${failure.reason}; retrying at ${next.toISOString()}`,
      };
    }
    case "recreate": {
      const { checkRunId: _id, lastSentDigest: _digest, ...rest } = state;
      return { state: { ...rest, lastError: failure.reason }, next: now, note: `${failure.reason}; creating a new check run` };
    }
    case "permanent":
      return {
        state: { ...state, failures: state.failures + 1, lastError: failure.reason, gaveUp: { version: report.version, reason: failure.reason } },
        note: `gave up: ${failure.reason}`,
      };
  }
}

function digest(body: unknown): string {
  return createHash("sha256").update(JSON.stringify(body)).digest("base64url");
}
