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
