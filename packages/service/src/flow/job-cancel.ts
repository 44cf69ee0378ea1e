import { cancelStep, isActiveJob, UNSETTLED } from "@nimbus/core";
import type { DerivationStatus } from "@nimbus/protocol";
import { conflict, notFound } from "../platform/errors.ts";
import { sendToAgent } from "../storage/agent-socket.ts";
import { getDerivation, leaseIs, moveDerivation } from "../storage/derivations.ts";
import type { DerivationItem, JobDerivationItem, JobItem } from "../storage/items.ts";
import type { StatusCounts } from "../storage/job-counts.ts";
import { WRITES_AT_ONCE } from "../storage/dynamo-batch.ts";
import { fanOutPage, sendFanOut } from "../storage/fan-out-queue.ts";
import { jobRowPages, jobsNeeding, mirrorStatus } from "../storage/job-derivations.ts";
import { beginCancel, endCancel, getJob, saveCancelProgress } from "../storage/jobs.ts";
import { getSessionLoad, releaseTask } from "../storage/sessions.ts";
import { cancelJobEffects } from "./effects.ts";

/** Rows one cancel call reads at most, in pages of the fan-out page: most rows of a big job are settled and cost only their read. */
const CANCEL_PAGES_READ = 10;
/** And the time it may take (API Gateway answers for a handler after 29 s). */
const CANCEL_BUDGET_MS = 10_000;

export interface CancelAnswer {
  id: string;
  status: "cancelled";
  /** False when derivations are still to cancel: the FanOut queue goes on with them (as would a second cancel, or the sweeper). */
  complete: boolean;
}

/**
 * Cancels a running job: its waiting, queued and building derivations are cancelled unless
 * another running job needs them (core `cancelStep`); agents building them are told to stop.
 * Idempotent and resumable: the job is cancelled at once, its derivations a bounded part per
 * call, and the rest a page per FanOut message; cancelling it again goes on where the last call stopped.
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

/**
 * Goes on with a cancellation from where it stopped, within the call's bounds — a page of
 * derivations acted on (`NIMBUS_FAN_OUT_PAGE`), ten pages of rows read, the deadline — and
 * counts the rows it passes as it leaves them. If some are left it saves where it got to, with
 * the counts so far, and puts the next page on the FanOut queue (flow/fan-out.ts:
 * docs/architecture.md, "Fan-out in pages"). Whether it is complete.
 */
export async function continueCancel(job: JobItem, deadline: number, now = new Date()): Promise<boolean> {
  if (job.evaluation.status === "running" && job.evaluation.sessionId) await stopTask(job.evaluation.sessionId, job.evaluation.taskId);
  const size = fanOutPage();
  const counts: StatusCounts = { ...(job.cancelCounts ?? {}) };
  let acted = 0;
  let read = 0;
  let last = job.cancelFrom;
  const stop = async () => {
    // The cursor and the counts of the rows before it are saved together, so whoever goes on from there counts each row once.
    if (await saveCancelProgress(job.jobId, last, counts, now)) await sendFanOut({ type: "cancel", jobId: job.jobId, ...(last ? { after: last } : {}) });
    return false;
  };
  for await (const { items } of jobRowPages(job.jobId, job.cancelFrom, size)) {
    // Rows are counted in order, but their cancels run up to WRITES_AT_ONCE ahead of the row
    // being counted, within the call's bounds (started in row order, so a call stops at a row
    // with nothing started past it). A call that fails meanwhile leaves a row cancelled ahead to
    // the next one: read again from the saved cursor, already cancelled, and counted then.
    const started = new Map<number, Promise<DerivationStatus | undefined>>();
    let nextToStart = 0;
    const startAhead = () => {
      for (; nextToStart < items.length && started.size < WRITES_AT_ONCE; nextToStart++) {
        const row = items[nextToStart]!;
        if (!UNSETTLED.includes(row.status)) continue;
        if (acted + started.size >= size || Date.now() > deadline) return;
        const cancel = cancelDerivation(row, job.jobId);
        cancel.catch(() => {}); // awaited when its row is counted; until then a failure must not go unhandled
        started.set(nextToStart, cancel);
      }
    };
    for (const [i, row] of items.entries()) {
      let status = row.status;
      if (UNSETTLED.includes(row.status)) {
        startAhead();
        const cancel = started.get(i);
        // Not started: the call's bounds are reached (and nothing after it was started either).
        if (!cancel) return stop();
        started.delete(i);
        status = (await cancel) ?? row.status;
        acted++;
      }
      counts[status] = (counts[status] ?? 0) + 1;
      last = row.drvPath;
      read++;
    }
    if (read >= CANCEL_PAGES_READ * size) return stop();
  }
  // Its effects too (docs/effects.md): an effect running is stopped on its agent.
  if (job.effectCount) {
    for (const effect of await cancelJobEffects(job.jobId, now)) {
      if (effect.taskId && effect.sessionId) await stopTask(effect.sessionId, effect.taskId);
    }
  }
  await endCancel(job.jobId, counts);
  return true;
}

/** One derivation of a cancelled job, as core `cancelStep` says; the status it is left in (to count it). */
async function cancelDerivation(row: JobDerivationItem, jobId: string): Promise<DerivationStatus | undefined> {
  const drv = await getDerivation(row.drvPath);
  const step = cancelStep(drv?.status, drv !== undefined && UNSETTLED.includes(drv.status) && (await neededElsewhere(row.drvPath, jobId)));
  if (!drv || step === "leave") return drv?.status;
  // Its parts' markers stay: if another job needs it after all, it is started again as it was.
  const moved =
    step === "stop-build"
      ? await stopBuild(drv)
      : await moveDerivation(row.drvPath, { from: ["waiting", "queued"], to: "cancelled", note: { reason: `its job ${jobId} was cancelled` } });
  if (!moved) return (await getDerivation(row.drvPath))?.status; // another cancel (or a settle) moved it first
  if (step !== "stop-build") await mirrorStatus(moved);
  return moved.status;
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
async function stopBuild(drv: DerivationItem): Promise<DerivationItem | undefined> {
  const lease = drv.lease;
  if (!lease) return undefined;
  const moved = await moveDerivation(drv.drvPath, {
    from: ["building"],
    to: "cancelled",
    remove: ["lease"],
    note: { reason: "its job was cancelled" },
    condition: leaseIs(lease.taskId),
  });
  if (!moved) return undefined;
  await mirrorStatus(moved);
  await stopTask(lease.sessionId, lease.taskId);
  return moved;
}

/** Tells the agent holding a task of a cancelled job to stop it, and frees its slot. */
async function stopTask(sessionId: string, taskId: string): Promise<void> {
  const session = await getSessionLoad(sessionId);
  if (session?.connectionId) await sendToAgent(session.connectionId, { type: "cancel", taskId, reason: "its job was cancelled" });
  await releaseTask(sessionId, taskId);
}
