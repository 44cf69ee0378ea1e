/**
 * Telling GitHub how jobs go (docs/github.md, "What is reported"): a check run per job (App
 * mode) or a commit status (token mode). @nimbus/github decides what to send and when; this
 * keeps its state in the Reports table, lets one invocation at a time send (a short lease),
 * and leaves a due time for the sweeper when the decision is "not yet" (a throttle, a rate
 * limit, a back-off). Nothing here fails the caller: GitHub's troubles are logged and retried.
 */
import { randomUUID } from "node:crypto";
import { deliverReport, earliestSend, INITIAL_REPORT_STATE, jobReportFromView, type Delivery } from "@nimbus/github";
import { github, type Github } from "../platform/github.ts";
import type { JobItem } from "../storage/items.ts";
import { writeCountMovesNow } from "../storage/job-counts.ts";
import { getJob } from "../storage/jobs.ts";
import { deferReport, dueReports, getReport, leaseReport, releaseReport, scheduleReport } from "../storage/reports.ts";
import { jobView } from "./job-view.ts";
import type { WorkNotes } from "./new-work.ts";

/** Long enough for the (at most three) requests of one delivery, each given up after 10 s, and a token. */
const LEASE_MS = 45_000;
/** A change that arrives while another invocation sends is sent by it afterwards, this many rounds at most. */
const MAX_ROUNDS = 3;
/** The sweeper sends at most this many due reports per run (and none once its share of the sweep's time is up). */
export const DUE_REPORTS_PER_SWEEP = 20;

/** The last settings problem logged: said once per container, not on every frame. */
let loggedProblem: string | undefined;

/** GitHub's side of the stack, or undefined when nothing is reported (off, or settings that are wrong: logged). */
function reporting(): (Github & { reporting: NonNullable<Github["reporting"]> }) | undefined {
  let settings: Github;
  try {
    settings = github();
  } catch (error) {
    const problem = error instanceof Error ? error.message : String(error);
    if (problem !== loggedProblem) console.error(`GitHub reports are off: ${problem}`);
    loggedProblem = problem;
    return undefined;
  }
  return settings.reporting ? (settings as Github & { reporting: NonNullable<Github["reporting"]> }) : undefined;
}

/** Reports every job the invocation changed. With reporting off this reads nothing at all. */
export async function reportChangedJobs(work: WorkNotes, now = new Date(), outOfTime: () => boolean = () => false): Promise<boolean> {
  if (work.changedJobs.size === 0 || !reporting()) return true;
  // The sweeper's share of time is up: the reports are left due, for the next sweep.
  if (outOfTime()) {
    await Promise.all([...work.changedJobs].map((jobId) => scheduleReport(jobId, now)));
    return false;
  }
  await countsWritten();
  await Promise.all([...work.changedJobs].map((jobId) => sendReport(jobId, now)));
  return true;
}

/**
 * The sweeper's part: reports whose due time has come (a throttle, a rate limit or a back-off
 * ended), until `outOfTime` says its share of the sweep is up; how many were sent, and whether
 * it got through them.
 */
export async function reportDueJobs(now: Date, outOfTime: () => boolean = () => false): Promise<{ sent: number; finished: boolean }> {
  if (!reporting()) return { sent: 0, finished: true };
  await countsWritten();
  let sent = 0;
  for (const item of await dueReports(now, DUE_REPORTS_PER_SWEEP)) {
    if (outOfTime()) return { sent, finished: false };
    await sendReport(item.jobId, now);
    sent++;
  }
  return { sent, finished: true };
}

/**
 * Brings GitHub up to date with one job as far as is allowed at `now`; what must wait is left
 * due for the sweeper. Skipped when reporting is off or the repository is not on GitHub.
 */
export async function reportJob(jobId: string, now = new Date()): Promise<void> {
  if (!reporting()) return;
  await countsWritten();
  await sendReport(jobId, now);
}

/**
 * Reports show the jobs' kept counts (storage/job-counts.ts): this invocation's moves go in
 * first. A failed write leaves a count off until the job ends and is counted exactly.
 */
async function countsWritten(): Promise<void> {
  try {
    await writeCountMovesNow();
  } catch (error) {
    console.error(`job counts not written before a report: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function sendReport(jobId: string, now: Date): Promise<void> {
  const settings = reporting();
  if (!settings) return;
  try {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (!(await reportOnce(settings, jobId, now))) return;
    }
  } catch (error) {
    // A table or GitHub hiccup must not fail the agent's frame or the webhook that changed the job.
    console.error(`report of job ${jobId} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** One attempt; true when the job changed while it sent and another round should follow. */
async function reportOnce(settings: Github & { reporting: NonNullable<Github["reporting"]> }, jobId: string, now: Date): Promise<boolean> {
  const job = await getJob(jobId);
  if (!job?.onGithub) return false;
  const item = await getReport(jobId);
  const state = item?.state ?? INITIAL_REPORT_STATE;
  // Cheap first: the stored state and two fields say whether anything could go out now.
  const earliest = earliestSend(state, { createdAt: job.createdAt, final: isFinal(job) }, now);
  if (earliest.getTime() > now.getTime()) {
    if (!item?.dueAt || Date.parse(item.dueAt) > earliest.getTime()) await scheduleReport(jobId, earliest);
    else if (Date.parse(item.dueAt) < earliest.getTime()) await deferReport(jobId, item.dueAt, earliest);
    return false;
  }
  const token = randomUUID();
  const leased = item?.leaseUntil && Date.parse(item.leaseUntil) >= now.getTime() ? undefined : await leaseReport(jobId, token, now, new Date(now.getTime() + LEASE_MS));
  if (!leased) {
    // Someone is sending an older view: it sends again after it is done (it sees this due time).
    await scheduleReport(jobId, now);
    return false;
  }
  let delivery: Delivery;
  try {
    const report = jobReportFromView(await jobView(job), {
      publicUrl: settings.reporting.publicUrl,
      ...(reportName(job) ? { name: reportName(job) } : {}),
      ...(job.status === "held" ? { hold: { reason: job.holdReason ?? "waiting for approval", approvalLabel: job.approvalLabel ?? settings.policy.approvalLabel } } : {}),
    });
    delivery = await deliverReport(settings.reporting.reporter, report, leased.state, {
      now,
      ...(job.installationId !== undefined ? { installationId: job.installationId } : {}),
    });
  } catch (error) {
    await releaseReport(jobId, token, leased.state);
    await scheduleReport(jobId, new Date(now.getTime() + 60_000));
    throw error;
  }
  await releaseReport(jobId, token, delivery.state);
  if (delivery.next) await scheduleReport(jobId, delivery.next);
  console.log(JSON.stringify({ report: jobId, notes: delivery.notes }));
  // A change that came in meanwhile left a due time for now: go round again.
  const after = await getReport(jobId);
  return after?.dueAt !== undefined && after.leaseUntil === undefined && Date.parse(after.dueAt) <= Math.max(now.getTime(), Date.now());
}

/**
 * The check's name (`nimbus/<name>`): `onPush` for a push's job as before (its `default`
 * handler, or a repository without herculesCI), `onPush.<name>` / `onSchedule.<name>` for the
 * others (docs/effects.md). A first job learns its handler once evaluated, and its check is renamed then.
 */
export function reportName(job: Pick<JobItem, "handler">): string | undefined {
  const handler = job.handler;
  if (!handler || (handler.kind === "onPush" && handler.name === "default")) return undefined;
  return `${handler.kind}.${handler.name.replace(/[^A-Za-z0-9_.:-]/g, "_")}`;
}

/** A verdict (or a hold) goes out at once; progress is throttled. */
const isFinal = (job: JobItem) => job.status !== "evaluating" && job.status !== "building";
