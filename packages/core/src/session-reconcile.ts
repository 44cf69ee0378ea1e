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

/** A task a session holds, as a heartbeat's reconciliation needs it. */
export interface HeldTask {
  taskId: string;
  /** When the session reserved it (an ISO time). */
  startedAt: string;
}

/**
 * What a heartbeat that lists the agent's tasks asks for: the held tasks the agent does not
 * list, once held for `settleMs` (the message giving a younger one may still be on its way),
 * are checked with their kind; listed tasks the session does not hold are cancelled.
 */
export function reconcileHeartbeat(held: readonly HeldTask[], running: readonly string[], now: Date, settleMs: number): { check: string[]; cancel: string[] } {
  const settled = held.filter((task) => Date.parse(task.startedAt) <= now.getTime() - settleMs).map((task) => task.taskId);
  const { resendIfLeased, cancel } = reconcileSession(settled, running);
  const holds = new Set(held.map((task) => task.taskId));
  return { check: resendIfLeased, cancel: cancel.filter((taskId) => !holds.has(taskId)) };
}

/**
 * Where a held task stands, as its kind reads its target: `leased` to this session (the agent
 * should be running it), `pending` (queued for this task id: a dispatch may be about to lease
 * it), or `gone` (it can never become this session's again).
 */
export type TaskStanding = "leased" | "pending" | "gone";

/** No handler runs longer (Lambda stops socket handlers at 25 s, the sweeper at 50 s): a reservation this old was left by a dead one. */
export const RESERVATION_TIMEOUT_MS = 60_000;

/**
 * What to do with a held task its agent does not list: send it again while its lease is the
 * session's; free the slot once the task is gone, or was reserved by a handler that died
 * before it took the lease; else wait.
 */
export function unlistedTaskAction(standing: TaskStanding, heldForMs: number): "resend" | "release" | "wait" {
  if (standing === "leased") return "resend";
  if (standing === "gone" || heldForMs >= RESERVATION_TIMEOUT_MS) return "release";
  return "wait";
}

/**
 * A task a session records whose target is not leased to it: its slot is given back once the
 * record is older than `graceMs`. A slot is reserved just before the lease is taken (beside it
 * in a hand-over), so only a handler that died between the two writes (or a target that moved
 * on without releasing, like a cancelled evaluation) leaves one for longer.
 */
export const isAbandonedSlot = (record: { startedAt: string }, leased: boolean, now: Date, graceMs: number): boolean =>
  !leased && now.getTime() - Date.parse(record.startedAt) > graceMs;

/**
 * A lease whose session does not hold the task (any more): the session was ended by a handler
 * that died before handing the task back, or a hand-over's handler died after its lease and
 * before its slot's reservation (written at once). Leases are otherwise taken only after the
 * slot is reserved, and a result moves the target before the slot is released; the sweeper
 * looks only at leases a heartbeat old, so a hand-over under way is not one.
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
