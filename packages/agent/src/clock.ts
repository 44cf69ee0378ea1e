/**
 * Time as the agent reads it: every timer of the agent's own (back-off, heartbeats, welcome and
 * shutdown deadlines) goes through a `Clock`, so tests can move time by hand instead of waiting.
 */

/** What `setTimeout` returned, to give back to `clearTimeout`. */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds, as `Date.now()`. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};
