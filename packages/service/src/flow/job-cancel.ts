import { cancelStep, isActiveJob, UNSETTLED } from "@nimbus/core";
import { conflict, notFound } from "../platform/errors.ts";
import { sendToAgent } from "../storage/agent-socket.ts";
import { getDerivation, moveDerivation } from "../storage/derivations.ts";
import type { DerivationItem, JobDerivationItem, JobItem } from "../storage/items.ts";
import { jobRowPages, jobsNeeding, mirrorStatus } from "../storage/job-derivations.ts";
import { beginCancel, endCancel, getJob, saveCancelProgress } from "../storage/jobs.ts";
import { getSessionLoad, releaseTask } from "../storage/sessions.ts";

/** Derivations one cancel call acts on at most; the rest waits for the next call or the sweeper. */
export const CANCEL_ROWS_PER_CALL = 100;
/** And the time it may take (API Gateway answers for a handler after 29 s). */
const CANCEL_BUDGET_MS = 10_000;

export interface CancelAnswer {
  id: string;
  status: "cancelled";
  /** False when derivations are still to cancel: a second cancel (or the sweeper) goes on with them. */
  complete: boolean;
}

/**
 * Cancels a running job: its waiting, queued and building derivations are cancelled unless
 * another running job needs them (core `cancelStep`); agents building them are told to stop.
 * Idempotent and resumable: the job is cancelled at once, its derivations a bounded part per
 * call, and cancelling it again goes on where the last call stopped.
 */
export async function cancelJob(jobId: string, now = new Date()): Promise<CancelAnswer> {
  let job = await getJob(jobId);
  if (!job) throw notFound(`no job ${jobId} — list jobs with \`nimbus jobs\``);
  if (isActiveJob(job.status) && !(await beginCancel(jobId, now))) job = (await getJob(jobId)) ?? job;
  else if (isActiveJob(job.status)) job = { ...job, status: "cancelled", cancelling: true };
  if (job.status !== "cancelled") throw conflict(`job ${jobId} already ended (${job.status}); nothing to cancel`);
  const complete = !job.cancelling || (await continueCancel(job, Date.now() + CANCEL_BUDGET_MS, now));
  return { id: jobId, status: "cancelled", complete };
}

/** Goes on with a cancellation from where it stopped, within the call's bounds; whether it is complete. */
export async function continueCancel(job: JobItem, deadline: number, now = new Date()): Promise<boolean> {
  if (job.evaluation.status === "running" && job.evaluation.sessionId) await stopTask(job.evaluation.sessionId, job.evaluation.taskId);
  let acted = 0;
  let last = job.cancelFrom;
  for await (const { items } of jobRowPages(job.jobId, job.cancelFrom)) {
    for (const row of items) {
      if (UNSETTLED.includes(row.status)) {
        if (acted >= CANCEL_ROWS_PER_CALL || Date.now() > deadline) {
          await saveCancelProgress(job.jobId, last, now);
          return false;
        }
        await cancelDerivation(row, job.jobId);
        acted++;
      }
      last = row.drvPath;
    }
  }
  await endCancel(job.jobId);
  return true;
}

/** One derivation of a cancelled job, as core `cancelStep` says. */
async function cancelDerivation(row: JobDerivationItem, jobId: string): Promise<void> {
  const drv = await getDerivation(row.drvPath);
  const step = cancelStep(drv?.status, drv !== undefined && UNSETTLED.includes(drv.status) && (await neededElsewhere(row.drvPath, jobId)));
  if (!drv || step === "leave") return;
  if (step === "stop-build") return stopBuild(drv);
  // Its parts' markers stay: if another job needs it after all, it is started again as it was.
  const moved = await moveDerivation(row.drvPath, { from: ["waiting", "queued"], to: "cancelled" });
  if (moved) await mirrorStatus(moved);
}

/**
 * Whether another job that is still running needs this derivation. The byDrv index may not
 * show a job that registered it a moment ago: such a job starts it again itself (its
 * registration, or the sweeper: core `jobOutcome` never finishes it on a cancelled derivation).
 */
async function neededElsewhere(drvPath: string, jobId: string): Promise<boolean> {
  for (const other of await jobsNeeding(drvPath)) {
    if (other === jobId) continue;
    const job = await getJob(other);
    if (job && isActiveJob(job.status)) return true;
  }
  return false;
}

/** Cancels a running build: the lease goes, the agent is told to stop, its slot is freed. */
async function stopBuild(drv: DerivationItem): Promise<void> {
  const lease = drv.lease;
  if (!lease) return;
  const moved = await moveDerivation(drv.drvPath, {
    from: ["building"],
    to: "cancelled",
    remove: ["lease"],
    condition: { expression: "lease.taskId = :task", values: { ":task": lease.taskId } },
  });
  if (!moved) return;
  await mirrorStatus(moved);
  await stopTask(lease.sessionId, lease.taskId);
}

/** Tells the agent holding a task of a cancelled job to stop it, and frees its slot. */
async function stopTask(sessionId: string, taskId: string): Promise<void> {
  const session = await getSessionLoad(sessionId);
  if (session?.connectionId) await sendToAgent(session.connectionId, { type: "cancel", taskId, reason: "its job was cancelled" });
  await releaseTask(sessionId, taskId);
}
