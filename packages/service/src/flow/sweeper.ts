import { PROPAGATING } from "@nimbus/core";
import { timing } from "../platform/timing.ts";
import { closeAgentConnection } from "../storage/agent-socket.ts";
import { sendToBuildQueue } from "../storage/build-queues.ts";
import { quietConnections } from "../storage/connections.ts";
import { claimResend, dueRetries, getDerivation, staleQueued, unpropagated } from "../storage/derivations.ts";
import type { DerivationItem } from "../storage/items.ts";
import { countingMoves } from "../storage/job-counts.ts";
import { quietJobs } from "../storage/jobs.ts";
import { wakeIdleAgents } from "./dispatch.ts";
import { startReadyEffects } from "./effects.ts";
import { runDueSchedules } from "./schedules.ts";
import { continueCancel } from "./job-cancel.ts";
import { finishJobIfDone } from "./job-finish.ts";
import { repairJobRows } from "./job-repair.ts";
import { reportChangedJobs, reportDueJobs } from "./job-reports.ts";
import { handBackOrphanedBuilds, handBackOrphanedEvaluation, releaseAbandonedSlots } from "./lease-repair.ts";
import { WorkNotes } from "./new-work.ts";
import { endSession } from "./session-end.ts";
import { quietSessions } from "./sessions.ts";
import { settle } from "./settle.ts";

export interface SweepReport {
  connectionsRemoved: number;
  sessionsEnded: number;
  derivationsResent: number;
  settlesPropagated: number;
  jobsFinished: number;
  jobRowsRepaired: number;
  leasesHandedBack: number;
  slotsReleased: number;
  cancelsCompleted: number;
  reportsSent: number;
  /** Jobs started for `onSchedule` handlers whose time came. */
  schedulesRun: number;
}

/** Time the sweeper gives one unfinished cancellation per sweep. */
const CANCEL_STEP_MS = 5_000;

/**
 * The scheduled safety net (docs/reliability.md, "The sweeper"). Each step reads a (sparse)
 * index of what might need help — never a whole table — and acts with conditional writes, so
 * two sweeps at once change nothing twice:
 * 1. connections silent for two heartbeats: closed ($disconnect is best-effort, and a silent
 *    death may leave the gateway a half-open socket), so their session's disconnect grace runs;
 * 2. sessions silent past the grace period: their agent is lost, their tasks go back; leases
 *    whose session no longer holds the task (a handler died while ending it) go back too, and
 *    slots reserved for a task never leased to the session (a handler died in between) are freed;
 * 3. queued derivations due after a back-off, or not leased for a long while (their message
 *    was lost, or a local restart emptied the queues): sent to their queue again;
 * 4. settled derivations whose dependents and jobs were never told (a Lambda died between);
 * 5. running jobs: their copies of derivation statuses put right where a mirror missed them,
 *    derivations another job's cancel took from them started again, and those with nothing
 *    left to do that nobody finished finished; cancelled jobs whose cancellation was cut short
 *    go on with it;
 * 6. `onSchedule` handlers whose time came (a job each, once however many times were missed),
 *    and effects whose turn came or whose message may be lost (docs/effects.md);
 * 7. GitHub reports whose due time came (a throttle, a rate limit or a back-off ended), and
 *    the reports of the jobs this sweep changed.
 * `now` is the sweep's clock: every "silent since" is measured from it.
 */
export function sweep(now = new Date()): Promise<SweepReport> {
  // The job counts its moves change are written once per job, at the end of the sweep.
  return countingMoves(() => sweepOnce(now));
}

async function sweepOnce(now: Date): Promise<SweepReport> {
  const t = timing();
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const work = new WorkNotes();
  const report: SweepReport = {
    connectionsRemoved: 0,
    sessionsEnded: 0,
    derivationsResent: 0,
    settlesPropagated: 0,
    jobsFinished: 0,
    jobRowsRepaired: 0,
    leasesHandedBack: 0,
    slotsReleased: 0,
    cancelsCompleted: 0,
    reportsSent: 0,
    schedulesRun: 0,
  };

  // Two heartbeats without a word: the agent is dead or cut off (a half-open socket can look
  // alive to the gateway for minutes). Closing it detaches its session, which then has the
  // disconnect grace to come back in.
  for (const connection of await quietConnections(ago(2 * t.heartbeatIntervalMs))) {
    await closeAgentConnection(connection.connectionId, now);
    report.connectionsRemoved++;
  }
  for (const session of await quietSessions(ago(t.sessionGraceMs))) {
    if (await endSession(session.sessionId, "its agent was lost", work, { seenBefore: session.lastSeen })) report.sessionsEnded++;
  }
  report.leasesHandedBack += await handBackOrphanedBuilds(ago(t.heartbeatIntervalMs), work, now);
  report.slotsReleased += await releaseAbandonedSlots(now, t.heartbeatIntervalMs);
  const due = await dueRetries(now);
  const stale = await staleQueued(ago(t.requeueAfterMs));
  for (const drv of [...due, ...stale]) {
    if (await resend(drv, work, now)) report.derivationsResent++;
  }
  // Telling dependents and jobs again is harmless: every step of it is conditional. The index
  // may lag: what is told is the derivation as it is now, and only while it is still settled.
  for (const indexed of await unpropagated(ago(t.heartbeatIntervalMs))) {
    const drv = await getDerivation(indexed.drvPath);
    if (!drv?.propagateShard || !PROPAGATING.includes(drv.status)) continue;
    await settle(drv, work, now);
    report.settlesPropagated++;
  }
  for (const job of await quietJobs(ago(t.heartbeatIntervalMs))) {
    if (job.status === "cancelled") {
      if (job.cancelling && (await continueCancel(job, Date.now() + CANCEL_STEP_MS, now))) report.cancelsCompleted++;
      continue;
    }
    if (await handBackOrphanedEvaluation(job, work)) report.leasesHandedBack++;
    const repaired = await repairJobRows(job, work, now);
    report.jobRowsRepaired += repaired;
    if (repaired > 0) work.addChangedJob(job.jobId);
    if (await finishJobIfDone(job.jobId)) {
      report.jobsFinished++;
      work.addChangedJob(job.jobId);
    }
  }
  // Schedules whose time came: only the due ones are read (docs/effects.md, "Schedules").
  report.schedulesRun = await runDueSchedules(now, work);
  // Effects whose turn may have come (a line freed, an earlier job evaluated), and lost effect messages.
  await startReadyEffects(now, work);
  await wakeIdleAgents(work);
  report.reportsSent = await reportDueJobs(now);
  await reportChangedJobs(work, now);
  return report;
}

/** Sends a queued derivation to its queue again, once per sweep (the write is conditional on what was read). */
async function resend(drv: DerivationItem, work: WorkNotes, now: Date): Promise<boolean> {
  if (!(await claimResend(drv, now))) return false;
  // A new deduplication id: the earlier message may still sit in SQS's 5-minute window.
  await sendToBuildQueue({ ...drv, resend: now.getTime() });
  work.addBuildQueue(drv.queueKey);
  return true;
}
