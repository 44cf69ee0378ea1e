import { timing } from "../platform/timing.ts";
import { pruneIfGone } from "../storage/agent-socket.ts";
import { sendToBuildQueue } from "../storage/build-queues.ts";
import { quietConnections } from "../storage/connections.ts";
import { claimResend, dueRetries, staleQueued, unpropagated } from "../storage/derivations.ts";
import type { DerivationItem } from "../storage/items.ts";
import { countingMoves } from "../storage/job-counts.ts";
import { quietJobs } from "../storage/jobs.ts";
import { wakeIdleAgents } from "./dispatch.ts";
import { finishJobIfDone } from "./job-finish.ts";
import { reportChangedJobs, reportDueJobs } from "./job-reports.ts";
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
  reportsSent: number;
}

/**
 * The scheduled safety net (docs/reliability.md, "The sweeper"). Each step reads a (sparse)
 * index of what might need help — never a whole table — and acts with conditional writes, so
 * two sweeps at once change nothing twice:
 * 1. connections silent for two heartbeats that the gateway no longer has ($disconnect is best-effort);
 * 2. sessions silent past the grace period: their agent is lost, their tasks go back;
 * 3. queued derivations due after a back-off, or not leased for a long while (their message
 *    was lost, or a local restart emptied the queues): sent to their queue again;
 * 4. settled derivations whose dependents and jobs were never told (a Lambda died between);
 * 5. running jobs with nothing left to do that nobody finished;
 * 6. GitHub reports whose due time came (a throttle, a rate limit or a back-off ended), and
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
  const report: SweepReport = { connectionsRemoved: 0, sessionsEnded: 0, derivationsResent: 0, settlesPropagated: 0, jobsFinished: 0, reportsSent: 0 };

  for (const connection of await quietConnections(ago(2 * t.heartbeatIntervalMs))) {
    if (await pruneIfGone(connection.connectionId)) report.connectionsRemoved++;
  }
  for (const session of await quietSessions(ago(t.sessionGraceMs))) {
    if (await endSession(session, "its agent was lost", work, session.lastSeen)) report.sessionsEnded++;
  }
  const due = await dueRetries(now);
  const stale = await staleQueued(ago(t.requeueAfterMs));
  for (const drv of [...due, ...stale]) {
    if (await resend(drv, work, now)) report.derivationsResent++;
  }
  // Telling dependents and jobs again is harmless: every step of it is conditional.
  for (const drv of await unpropagated(ago(t.heartbeatIntervalMs))) {
    await settle(drv, work, now);
    report.settlesPropagated++;
  }
  for (const job of await quietJobs(ago(t.heartbeatIntervalMs))) {
    if (await finishJobIfDone(job.jobId)) {
      report.jobsFinished++;
      work.addChangedJob(job.jobId);
    }
  }
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
