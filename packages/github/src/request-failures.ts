/**
 * What a failed GitHub request means for the report that made it: wait for a rate limit,
 * back off and retry, make the check run again, or give up. Pure: the rules of
 * https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api.
 */

/** A failed request as the reporter saw it: no status when it never got an answer. */
export interface FailedRequest {
  status?: number;
  headers?: Record<string, string | number | undefined>;
  message: string;
  /** Which request failed: a 404 or 422 only means "make it again" for an update. */
  request: "create-check-run" | "update-check-run" | "commit-status" | "auth";
}

export type FailureClass =
  /** GitHub said when to come back (or, for a secondary limit, to wait a minute and more). */
  | { type: "rate-limited"; retryAfterMs: number; reason: string }
  /** Worth retrying after a back-off: server errors, timeouts, lost connections, a stale token. */
  | { type: "transient"; reason: string }
  /** The check run is gone or can no longer be changed: create a new one. */
  | { type: "recreate"; reason: string }
  /** Retrying would fail the same way: missing permission, App not installed, limits reached. */
  | { type: "permanent"; reason: string };

const SECOND = 1000;
const MINUTE = 60 * SECOND;
/** GitHub: after a secondary rate limit without retry-after, wait at least a minute, longer each time. */
export const SECONDARY_LIMIT_WAIT_MS = MINUTE;
export const MAX_RATE_LIMIT_WAIT_MS = 15 * MINUTE;
export const TRANSIENT_BASE_MS = 5 * SECOND;
export const MAX_TRANSIENT_WAIT_MS = 10 * MINUTE;

function header(failed: FailedRequest, name: string): string | undefined {
  const value = failed.headers?.[name] ?? failed.headers?.[name.toLowerCase()];
  return value === undefined ? undefined : String(value);
}

/**
 * `attempt` counts the failures in a row before this one (0 for the first), so repeated
 * secondary limits wait exponentially longer.
 */
export function classifyFailure(failed: FailedRequest, now: number, attempt: number): FailureClass {
  const { status, message } = failed;
  if (status === 403 || status === 429) {
    const retryAfter = header(failed, "retry-after");
    if (retryAfter !== undefined && /^\d+$/.test(retryAfter.trim())) {
      return { type: "rate-limited", retryAfterMs: Math.max(SECOND, Number(retryAfter) * SECOND), reason: `rate limited: retry-after ${retryAfter} s` };
    }
    const remaining = header(failed, "x-ratelimit-remaining");
    const reset = header(failed, "x-ratelimit-reset");
    if (remaining === "0" && reset !== undefined && /^\d+$/.test(reset)) {
      const wait = Math.min(MAX_RATE_LIMIT_WAIT_MS * 4, Math.max(SECOND, Number(reset) * SECOND - now));
      return { type: "rate-limited", retryAfterMs: wait, reason: `primary rate limit: resets at ${new Date(Number(reset) * SECOND).toISOString()}` };
    }
    if (status === 429 || /secondary rate limit|abuse/i.test(message)) {
      const wait = Math.min(MAX_RATE_LIMIT_WAIT_MS, SECONDARY_LIMIT_WAIT_MS * 2 ** Math.min(attempt, 10));
      return { type: "rate-limited", retryAfterMs: wait, reason: "secondary rate limit" };
    }
    return { type: "permanent", reason: `GitHub refused (${status}): ${message} — check the App's permissions (docs/github.md)` };
  }
  if (status === undefined || status >= 500 || status === 408) {
    return { type: "transient", reason: status ? `GitHub answered ${status}: ${message}` : `no answer from GitHub: ${message}` };
  }
  // A token that expired or was revoked early: the next attempt mints a new one.
  if (status === 401) return { type: "transient", reason: `GitHub did not accept the credentials: ${message}` };
  if (status === 409) return { type: "transient", reason: `conflict: ${message}` };
  if (failed.request === "update-check-run" && (status === 404 || status === 422)) {
    return { type: "recreate", reason: `the check run cannot be updated (${status}: ${message})` };
  }
  return { type: "permanent", reason: `GitHub refused (${status}): ${message}` };
}

/** How long to wait after a transient failure: 5 s, 10 s, 20 s … up to 10 minutes. */
export function transientBackoffMs(attempt: number): number {
  return Math.min(MAX_TRANSIENT_WAIT_MS, TRANSIENT_BASE_MS * 2 ** Math.min(attempt, 20));
}
