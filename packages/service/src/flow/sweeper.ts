import { planResends, quietJobAction, sweepDeadlines, type StaleWork, type SweepStep } from "@nimbus/core";
import { timing } from "../platform/timing.ts";
import { forgetAgentClass, quietAgentClasses } from "../storage/agent-classes.ts";
import { closeAgentConnection } from "../storage/agent-socket.ts";
import { buildQueueUrl, sendToBuildQueue } from "../storage/build-queues.ts";
import { quietConnections } from "../storage/connections.ts";
import { claimResend, dueRetries, staleQueued } from "../storage/derivations.ts";
import type { Position, Walked } from "../storage/index-walk.ts";
import type { DerivationItem, JobItem } from "../storage/items.ts";
import { countingMoves } from "../storage/job-counts.ts";
import { quietJobs } from "../storage/jobs.ts";
import { queueDepth } from "../storage/queue-messages.ts";
import { hasSessions } from "../storage/sessions.ts";
import { loadCursor, saveCursor } from "../storage/sweeper-cursors.ts";
import { wakeIdleAgents } from "./dispatch.ts";
import { startReadyEffects } from "./effects.ts";
import { resendLostEvaluations, timeOutEvaluation } from "./evaluation-watch.ts";
import { continueCancel } from "./job-cancel.ts";
import { finishJobIfDone } from "./job-finish.ts";
import { repairJobRows } from "./job-repair.ts";
import { runDueSchedules } from "./schedules.ts";
import { reportChangedJobs, reportDueJobs } from "./job-reports.ts";
import { handBackOrphanedBuilds, handBackOrphanedEvaluation, releaseAbandonedSlots } from "./lease-repair.ts";
import { WorkNotes } from "./new-work.ts";
import { endSession } from "./session-end.ts";
import { quietSessions } from "./sessions.ts";
import { tellUntoldSettles } from "./settle-look.ts";

export interface SweepReport {
  connectionsRemoved: number;
  sessionsEnded: number;
  derivationsResent: number;
  settlesPropagated: number;
  jobsFinished: number;
  evaluationsResent: number;
  evaluationsTimedOut: number;
  jobRowsRepaired: number;
  leasesHandedBack: number;
  slotsReleased: number;
  cancelsCompleted: number;
  reportsSent: number;
  /** Jobs started for `onSchedule` handlers whose time came. */
  schedulesRun: number;
  /** Capability classes forgotten: no hello of their kind of machine for a week, no session left. */
  agentClassesForgotten: number;
  /** Steps that ran out of their time: the next sweep goes on where each stopped. */
  unfinished: SweepStep[];
}

export interface SweepOptions {
  /** Milliseconds on a steady clock, for the steps' time budgets (tests pass one that jumps). */
  clock?: () => number;
}

/** Stale queued derivations read per sweep at most, to weigh against their queues' depths (the next sweep reads on). */
const STALE_READ_LIMIT = 250;

/** Time the sweeper gives one unfinished cancellation per sweep. */
const CANCEL_STEP_MS = 5_000;

/**
 * The scheduled safety net (docs/reliability.md, "The sweeper"). Each step reads a (sparse)
 * index of what might need help — never a whole table — and acts with conditional writes, so
 * two sweeps at once change nothing twice. Each step has a share of the sweep's time
 * (`NIMBUS_SWEEP_BUDGET_MS`, core `sweepDeadlines`); a step that walks items it leaves in its
 * index (quiet connections, stale queued derivations, quiet jobs) saves where it stopped, and
 * the next sweep goes on from there.
 * 1. connections silent for two heartbeats: closed ($disconnect is best-effort, and a silent
 *    death may leave the gateway a half-open socket), so their session's disconnect grace runs;
 * 2. sessions silent past the grace period: their agent is lost, their tasks go back; capability
 *    classes of machines retired a week ago (no hello, no session) are forgotten;
 * 3. leases whose session no longer holds the task (a handler died while ending it) go back,
 *    and slots reserved for a task never leased to the session (a handler died in between) are freed;
 * 4. retries whose back-off is over: sent to their queue;
 * 5. queued derivations waiting past the re-send window whose messages look lost (core
 *    `planResends` against the queues' depths, capped): sent again;
 * 6. derivations settled since the last look whose dependents and jobs were never told (a
 *    Lambda died between: their jobs' copies do not say `told`, flow/settle-look.ts), a settle
 *    with many dependents going on where the last one stopped, if still settled as read;
 * 7. running jobs: an evaluation whose session does not hold it queued again, a lost evaluation
 *    message sent again, an evaluation past its timeout failed, copies of derivation statuses
 *    put right where a mirror missed them, derivations another job's cancel took from them
 *    started again, a job with nothing left to do finished; cancelled jobs whose cancellation
 *    was cut short go on with it;
 * 8. `onSchedule` handlers whose time came (a job each, once however many times were missed),
 *    and effects whose turn came or whose message may be lost (docs/effects.md);
 * 9. GitHub reports whose due time came (a throttle, a rate limit or a back-off ended), and
 *    the reports of the jobs this sweep changed (those it has no time for are left due).
 * `now` is the sweep's clock: every "silent since" is measured from it.
 */
/** A kind of machine no agent has said hello with for this long, and with no session left, is forgotten. */
export const CLASS_RETIRED_MS = 7 * 24 * 3600 * 1000;

/** Forgets the capability classes of retired machines, so no wake or placement asks their empty index partitions again. */
async function forgetRetiredClasses(before: Date): Promise<number> {
  let forgotten = 0;
  for (const klass of await quietAgentClasses(before)) {
    if (!(await hasSessions(klass)) && (await forgetAgentClass(klass))) forgotten++;
  }
  return forgotten;
}

export function sweep(now = new Date(), options: SweepOptions = {}): Promise<SweepReport> {
  // The job counts its moves change are written once per job, at the end of the sweep.
  return countingMoves(() => sweepOnce(now, options));
}

async function sweepOnce(now: Date, options: SweepOptions): Promise<SweepReport> {
  const t = timing();
  const clock = options.clock ?? (() => performance.now());
  const deadlines = sweepDeadlines(clock(), t.sweepBudgetMs);
  const outOfTime = (step: SweepStep) => () => clock() >= deadlines[step];
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const work = new WorkNotes();
  const report: SweepReport = {
    connectionsRemoved: 0,
    sessionsEnded: 0,
    derivationsResent: 0,
    settlesPropagated: 0,
    jobsFinished: 0,
    evaluationsResent: 0,
    evaluationsTimedOut: 0,
    jobRowsRepaired: 0,
    leasesHandedBack: 0,
    slotsReleased: 0,
    cancelsCompleted: 0,
    reportsSent: 0,
    schedulesRun: 0,
    agentClassesForgotten: 0,
    unfinished: [],
  };
  const ran = (step: SweepStep, finished: boolean) => {
    if (!finished) report.unfinished.push(step);
  };

  // Two heartbeats without a word: the agent is dead or cut off (a half-open socket can look
  // alive to the gateway for minutes). Closing it detaches its session, which then has the
  // disconnect grace to come back in.
  ran(
    "quiet-connections",
    await walkFromCursor("quiet-connections", now, (start) => quietConnections(ago(2 * t.heartbeatIntervalMs), start), outOfTime("quiet-connections"), async (connection) => {
      await closeAgentConnection(connection.connectionId, now);
      report.connectionsRemoved++;
    }),
  );

  const lostSessionsLate = outOfTime("lost-sessions");
  let sessionsDone = true;
  for (const session of await quietSessions(ago(t.sessionGraceMs))) {
    if (lostSessionsLate()) {
      sessionsDone = false;
      break;
    }
    if (await endSession(session.sessionId, "its agent was lost", work, { seenBefore: session.lastSeen })) report.sessionsEnded++;
  }
  ran("lost-sessions", sessionsDone);
  report.agentClassesForgotten = await forgetRetiredClasses(ago(CLASS_RETIRED_MS));

  // Bounded by the agents' slots: a read of each session and each build leased a while.
  report.leasesHandedBack += await handBackOrphanedBuilds(ago(t.heartbeatIntervalMs), work, now);
  report.slotsReleased += await releaseAbandonedSlots(now, t.heartbeatIntervalMs);

  ran(
    "due-retries",
    await walkAll(dueRetries(now), outOfTime("due-retries"), async (drv) => {
      if (await resend(drv, work, now)) report.derivationsResent++;
    }),
  );

  ran("stale-queued", await resendLost(ago(t.requeueAfterMs), now, work, outOfTime("stale-queued"), report));

  // Telling dependents and jobs again is harmless: every step of it is conditional. Only the
  // settles since the last look, and of them those whose jobs' copies do not say they were told;
  // one page each from where its settle stopped, the rest through the FanOut queue.
  const settles = await tellUntoldSettles(ago(t.heartbeatIntervalMs), now, work, outOfTime("unpropagated-settles"));
  report.settlesPropagated += settles.told;
  ran("unpropagated-settles", settles.finished);

  const waiting: JobItem[] = [];
  const jobsLate = outOfTime("quiet-jobs");
  ran(
    "quiet-jobs",
    await walkFromCursor("quiet-jobs", now, (start) => quietJobs(ago(t.heartbeatIntervalMs), start), jobsLate, async (job) => {
      if (job.status === "cancelled") {
        if (job.cancelling && (await continueCancel(job, Date.now() + CANCEL_STEP_MS, now))) report.cancelsCompleted++;
        return;
      }
      if (await handBackOrphanedEvaluation(job, work)) {
        report.leasesHandedBack++;
        return;
      }
      const repaired = await repairJobRows(job, work, now);
      report.jobRowsRepaired += repaired;
      if (repaired > 0) work.addChangedJob(job.jobId);
      const action = quietJobAction(job, now, t);
      if (action.type === "evaluation-waiting") waiting.push(job);
      else if (action.type === "evaluation-timed-out") {
        if (await timeOutEvaluation(job, action.afterMs, now)) {
          report.evaluationsTimedOut++;
          work.addChangedJob(job.jobId);
        }
      } else if (await finishJobIfDone(job.jobId)) {
        report.jobsFinished++;
        work.addChangedJob(job.jobId);
      }
    }),
  );
  if (waiting.length) report.evaluationsResent = await resendLostEvaluations(waiting, now, work);
  // Schedules whose time came: only the due ones are read (docs/effects.md, "Schedules").
  report.schedulesRun = await runDueSchedules(now, work);
  // Effects whose turn may have come (a line freed, an earlier job evaluated), and lost effect messages.
  await startReadyEffects(now, work);

  await wakeIdleAgents(work);
  const reportsLate = outOfTime("github-reports");
  const reports = await reportDueJobs(now, reportsLate);
  report.reportsSent = reports.sent;
  const changedReported = await reportChangedJobs(work, now, reportsLate);
  ran("github-reports", reports.finished && changedReported);
  return report;
}

/** Acts on a query's items until it ends or time is up (or `act` says it could not finish); whether it got through. */
async function walkAll<T>(items: AsyncGenerator<Walked<T>>, outOfTime: () => boolean, act: (item: T) => Promise<unknown>): Promise<boolean> {
  for await (const { item } of items) {
    if (outOfTime()) return false;
    if ((await act(item)) === false) return false;
  }
  return true;
}

/**
 * Acts on an index's items from where this step stopped last time, until the index ends (the
 * next sweep starts over) or time is up (it saves where it stopped). Whether it got through.
 */
async function walkFromCursor<T>(
  step: SweepStep,
  now: Date,
  walk: (start?: Position) => AsyncGenerator<Walked<T>>,
  outOfTime: () => boolean,
  act: (item: T) => Promise<void>,
): Promise<boolean> {
  const start = await loadCursor(step);
  let position = start;
  for await (const walked of walkOrRestart(walk, start)) {
    if (outOfTime()) {
      await saveCursor(step, position, now);
      return false;
    }
    await act(walked.item);
    position = walked.position;
  }
  if (start) await saveCursor(step, undefined, now);
  return true;
}

/** A saved position the query no longer takes (its range moved past it) starts the walk over. */
async function* walkOrRestart<T>(walk: (start?: Position) => AsyncGenerator<Walked<T>>, start: Position | undefined): AsyncGenerator<Walked<T>> {
  if (!start) return yield* walk();
  try {
    yield* walk(start);
  } catch (error) {
    if (!(error instanceof Error && error.name === "ValidationException")) throw error;
    yield* walk();
  }
}

/**
 * Step 4: reads the stale queued derivations (from where it stopped, at most
 * `STALE_READ_LIMIT`), weighs each queue's share against the queue's depth (core
 * `planResends`), and sends again what looks lost.
 */
async function resendLost(before: Date, now: Date, work: WorkNotes, outOfTime: () => boolean, report: SweepReport): Promise<boolean> {
  const step = "stale-queued";
  const start = await loadCursor(step);
  const stale: DerivationItem[] = [];
  let position = start;
  let reachedEnd = true;
  for await (const walked of walkOrRestart((from) => staleQueued(before, from), start)) {
    if (stale.length >= STALE_READ_LIMIT || outOfTime()) {
      reachedEnd = false;
      break;
    }
    stale.push(walked.item);
    position = walked.position;
  }
  if (!reachedEnd || start) await saveCursor(step, reachedEnd ? undefined : position, now);
  const depths = new Map<string, number>();
  for (const queueKey of new Set(stale.map((drv) => drv.queueKey))) depths.set(queueKey, await queueDepth(await buildQueueUrl(queueKey)));
  // Their messages may all be there, visible again after a receiver died: idle agents that can take them are woken.
  for (const drv of stale) work.addBuildQueue(drv.queueKey);
  const candidates: StaleWork[] = stale.map((drv) => ({ id: drv.drvPath, queue: drv.queueKey, since: drv.queuedAt ?? drv.updatedAt }));
  const byPath = new Map(stale.map((drv) => [drv.drvPath, drv]));
  for (const drvPath of planResends(candidates, depths)) {
    if (outOfTime()) return false;
    if (await resend(byPath.get(drvPath)!, work, now)) report.derivationsResent++;
  }
  return reachedEnd;
}

/** Sends a queued derivation to its queue again, once per sweep (the write is conditional on what was read). */
async function resend(drv: DerivationItem, work: WorkNotes, now: Date): Promise<boolean> {
  if (!(await claimResend(drv, now))) return false;
  // A new deduplication id: the earlier message may still sit in SQS's 5-minute window.
  await sendToBuildQueue({ ...drv, resend: now.getTime() });
  work.addBuildQueue(drv.queueKey);
  return true;
}
