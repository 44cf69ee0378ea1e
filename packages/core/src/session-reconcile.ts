/**
 * What a (re)connecting agent must hear about its tasks (docs/reliability.md, "A reconnect
 * never restarts a build"): a task its session holds that it no longer runs is sent again if
 * the session still holds the lease on it; a task it runs that its session no longer holds is
 * cancelled; a task both know about goes on untouched.
 */
export interface Reconciliation {
  /** Held by the session, not running on the agent: resend each one whose lease is still the session's. */
  resendIfLeased: string[];
  /** Running on the agent, not held by the session: cancel. */
  cancel: string[];
}

export function reconcileSession(held: readonly string[], running: readonly string[]): Reconciliation {
  const runs = new Set(running);
  const holds = new Set(held);
  return {
    resendIfLeased: held.filter((taskId) => !runs.has(taskId)),
    cancel: [...runs].filter((taskId) => !holds.has(taskId)),
  };
}

export const NO_LONGER_HELD = "this agent no longer holds the task (it was handed to another agent or ended)";

/**
 * A task a session records whose target is not leased to it: its slot is given back once the
 * record is older than `graceMs`. A slot is reserved just before the lease is taken, so only
 * a handler that died between the two writes (or a target that moved on without releasing,
 * like a cancelled evaluation) leaves one for longer.
 */
export const isAbandonedSlot = (record: { startedAt: string }, leased: boolean, now: Date, graceMs: number): boolean =>
  !leased && now.getTime() - Date.parse(record.startedAt) > graceMs;

/**
 * A lease whose session does not hold the task (any more): the session was ended by a handler
 * that died before handing the task back. Leases are taken only after the slot is reserved
 * and a result moves the target before the slot is released, so this never happens in passing.
 */
export const isOrphanedLease = (lease: { taskId: string }, session: { tasks: Record<string, unknown> } | undefined): boolean =>
  !session || !Object.hasOwn(session.tasks, lease.taskId);

/** What a session looks like when the check made at its disconnect comes due. */
export interface SessionPresence {
  connectionId?: string;
  lastSeen: string;
}

/**
 * A session whose connection closed is checked once the disconnect grace is over: it ends
 * (its tasks go to other agents) unless its agent came back — it is on a connection again, or
 * was seen after the disconnect. A session already gone has nothing left to end.
 */
export function disconnectCheck(session: SessionPresence | undefined, detachedAt: string): "end" | "keep" | "gone" {
  if (!session) return "gone";
  if (session.connectionId !== undefined || Date.parse(session.lastSeen) > Date.parse(detachedAt)) return "keep";
  return "end";
}
