/**
 * The sweeper's two looks at leases and slots (docs/reliability.md, "The sweeper"), for what a
 * handler that died between two writes leaves behind: a lease whose session no longer holds
 * the task (core `isOrphanedLease`) goes back to its queue; a slot reserved for a task whose
 * target was never leased to the session (core `isAbandonedSlot`) is given back.
 */
import { isAbandonedSlot, isOrphanedLease } from "@nimbus/core";
import { leasedBuilds } from "../storage/derivations.ts";
import type { JobItem } from "../storage/items.ts";
import { releaseTask } from "../storage/sessions.ts";
import { dispatchToSession } from "./dispatch.ts";
import type { WorkNotes } from "./new-work.ts";
import { retryBuild } from "./retries.ts";
import { getSession, heldTasks, listSessions, type SessionItem } from "./sessions.ts";
import { returnEvaluation } from "./tasks/evaluate.ts";
import { taskKind } from "./tasks/registry.ts";

const ORPHANED = "its agent's session ended without handing it back";

/** Sessions read once per sweep, by id. */
function sessionReader(): (sessionId: string) => Promise<SessionItem | undefined> {
  const read = new Map<string, Promise<SessionItem | undefined>>();
  return (sessionId) => {
    let session = read.get(sessionId);
    if (!session) read.set(sessionId, (session = getSession(sessionId)));
    return session;
  };
}

/** Builds leased before `before` whose session does not hold them: retried. Returns how many. */
export async function handBackOrphanedBuilds(before: Date, work: WorkNotes, now: Date): Promise<number> {
  const sessionOf = sessionReader();
  let handedBack = 0;
  for (const drv of await leasedBuilds(before)) {
    if (!drv.lease || !isOrphanedLease(drv.lease, await sessionOf(drv.lease.sessionId))) continue;
    // Conditional on the lease: a result that settled it meanwhile wins.
    if (await retryBuild(drv.drvPath, drv.lease.taskId, ORPHANED, work, now)) handedBack++;
  }
  return handedBack;
}

/** A running evaluation whose session does not hold it: queued again. Whether it was. */
export async function handBackOrphanedEvaluation(job: JobItem, work: WorkNotes): Promise<boolean> {
  const { evaluation } = job;
  if (job.status !== "evaluating" || evaluation.status !== "running" || !evaluation.sessionId) return false;
  if (!isOrphanedLease(evaluation, await getSession(evaluation.sessionId))) return false;
  const lease = { taskId: evaluation.taskId, sessionId: evaluation.sessionId };
  return returnEvaluation(job.jobId, lease, `its agent ${evaluation.agent ?? "(unknown)"}: the session ended without handing it back`, work);
}

/**
 * Slots of every session (a table bounded by the number of agents) held for a task whose
 * target is not leased to it for longer than `graceMs`: given back, and the session offered
 * work again. Returns how many.
 */
export async function releaseAbandonedSlots(now: Date, graceMs: number): Promise<number> {
  let released = 0;
  for (const session of await listSessions()) {
    let freed = false;
    for (const [taskId, record] of heldTasks(session)) {
      const leased = await taskKind(record.kind).holds(taskId, record, session);
      if (isAbandonedSlot(record, leased, now, graceMs) && (await releaseTask(session.sessionId, taskId))) {
        released++;
        freed = true;
      }
    }
    if (freed) await dispatchToSession(session.sessionId);
  }
  return released;
}
