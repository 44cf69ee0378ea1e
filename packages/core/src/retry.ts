/**
 * When a build that did not fail through its own fault (its agent was lost, or answered
 * `exceptional`) is tried again (docs/reliability.md, "Failures are remembered; transient
 * trouble is retried"): at once the first time, then with Hydra's back-off, until the
 * attempts run out.
 */
export interface RetryPolicy {
  /** Attempts (first build included) before a transient failure becomes a failure. */
  maxAttempts: number;
  /** Retry n ≥ 2 waits base × 3^(n−2), at most `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
}

/** Delay before attempt `attempt` (1 = the first retry) may be dispatched. */
export function retryDelayMs(attempt: number, policy: RetryPolicy): number {
  if (attempt <= 1) return 0;
  return Math.min(policy.retryBaseMs * 3 ** (attempt - 2), policy.retryMaxMs);
}

export type RetryDecision =
  | { type: "give-up"; reason: string }
  | { type: "retry-now" }
  | { type: "retry-later"; dueAt: Date };

/**
 * What to do when a build ended for `reason` after `retries` earlier retries since the
 * derivation last started (0: the first build). Restarts (a rerun, a rebuild) are not retries.
 */
export function retryDecision(retries: number, reason: string, now: Date, policy: RetryPolicy): RetryDecision {
  const next = retries + 1;
  if (next >= policy.maxAttempts) return { type: "give-up", reason: `${reason}; gave up after ${next} attempts` };
  const delay = retryDelayMs(next, policy);
  return delay > 0 ? { type: "retry-later", dueAt: new Date(now.getTime() + delay) } : { type: "retry-now" };
}
