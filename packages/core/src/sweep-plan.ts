/**
 * The sweeper's choices (docs/reliability.md, "The sweeper"): which queued work to send
 * again, what a quiet job needs, and when an evaluation is given up. The service's sweep reads
 * the indexes and the queues' depths, asks these, and writes.
 */

import type { JobStatus } from "@nimbus/protocol";

/** Queued work that has waited for an agent past the re-send window. */
export interface StaleWork {
  id: string;
  /** The queue its message is on. */
  queue: string;
  /** When it was queued or last sent (ISO): the oldest go first. */
  since: string;
}

/** At most this many messages are sent again per sweep, whatever the indexes say. */
export const MAX_RESENDS_PER_SWEEP = 100;

/**
 * Which stale work to send again. A queue holding `depth` messages (visible, in flight or
 * delayed, as SQS counts them) while `n` of its items have waited past the window is missing
 * at least `n − depth` messages — those were lost (a handler died between the write and the
 * send, a local restart emptied the queues). So much, and no more, is sent again per queue,
 * oldest first, at most `cap` in all: a queue that merely waits for an agent gets nothing.
 */
export function planResends(stale: readonly StaleWork[], depths: ReadonlyMap<string, number>, cap = MAX_RESENDS_PER_SWEEP): string[] {
  const byQueue = new Map<string, StaleWork[]>();
  for (const work of stale) byQueue.set(work.queue, [...(byQueue.get(work.queue) ?? []), work]);
  const chosen: StaleWork[] = [];
  for (const [queue, waiting] of byQueue) {
    const lost = waiting.length - (depths.get(queue) ?? 0);
    if (lost > 0) chosen.push(...[...waiting].sort(bySince).slice(0, lost));
  }
  return chosen.sort(bySince).slice(0, Math.max(0, cap)).map((work) => work.id);
}

const bySince = (a: StaleWork, b: StaleWork) => a.since.localeCompare(b.since) || a.id.localeCompare(b.id);

/** A running job the sweeper found quiet, as far as the choice needs it. */
export interface QuietJob {
  status: JobStatus;
  updatedAt: string;
  evaluation: { status: "queued" | "running" | "succeeded" | "failed"; leasedAt?: string };
}

export type QuietJobAction =
  /** Its evaluation has waited past the re-send window: send it again if its message looks lost (`planResends`). */
  | { type: "evaluation-waiting" }
  /** Its evaluation has run past the timeout: fail it and stop the agent. */
  | { type: "evaluation-timed-out"; afterMs: number }
  /** Nothing is wrong with its evaluation: finish the job if nothing is left. */
  | { type: "finish-if-done" };

export function quietJobAction(job: QuietJob, now: Date, limits: { requeueAfterMs: number; evaluationTimeoutMs: number }): QuietJobAction {
  const age = (iso: string | undefined) => (iso ? now.getTime() - Date.parse(iso) : 0);
  if (job.status === "evaluating" && job.evaluation.status === "queued" && age(job.updatedAt) > limits.requeueAfterMs) {
    return { type: "evaluation-waiting" };
  }
  if (job.status === "evaluating" && job.evaluation.status === "running" && age(job.evaluation.leasedAt) >= limits.evaluationTimeoutMs) {
    return { type: "evaluation-timed-out", afterMs: limits.evaluationTimeoutMs };
  }
  return { type: "finish-if-done" };
}

export type EvaluationHandBack = { type: "queue-again"; retries: number } | { type: "give-up"; reason: string };

/**
 * An evaluation whose agent left or was lost goes back on its queue, until it has been handed
 * back `maxAttempts` times: then the job's evaluation fails (an evaluation that kills its
 * agents must not take down one agent after another).
 */
export function evaluationHandBack(retriesBefore: number, maxAttempts: number, reason: string): EvaluationHandBack {
  const retries = retriesBefore + 1;
  if (retries >= maxAttempts) {
    return { type: "give-up", reason: `${reason}; the evaluation was handed back ${retries} times, so it was given up (NIMBUS_MAX_EVALUATION_ATTEMPTS is ${maxAttempts})` };
  }
  return { type: "queue-again", retries };
}

/** The sweeper's steps, in the order they run. */
export const SWEEP_STEPS = ["quiet-connections", "lost-sessions", "due-retries", "stale-queued", "unpropagated-settles", "quiet-jobs", "github-reports"] as const;
export type SweepStep = (typeof SWEEP_STEPS)[number];

/** Each step's share of a sweep's time; settling (which may tell many dependents) gets the most. */
export const SWEEP_SHARES: Readonly<Record<SweepStep, number>> = {
  "quiet-connections": 0.1,
  "lost-sessions": 0.15,
  "due-retries": 0.1,
  "stale-queued": 0.1,
  "unpropagated-settles": 0.3,
  "quiet-jobs": 0.15,
  // Last: it also has what the others left (a report may wait on GitHub for seconds).
  "github-reports": 0.1,
};

/**
 * When each step must stop (on the clock `startMs` was read from): by the end of its share,
 * counted from the sweep's start, so time a step leaves unused goes to the next ones and the
 * whole sweep ends within `budgetMs` (and one item).
 */
export function sweepDeadlines(startMs: number, budgetMs: number): Record<SweepStep, number> {
  let share = 0;
  const deadlines = {} as Record<SweepStep, number>;
  for (const step of SWEEP_STEPS) {
    share += SWEEP_SHARES[step];
    deadlines[step] = startMs + Math.min(1, share) * budgetMs;
  }
  return deadlines;
}

/**
 * How long after the time it is stamped with a settle may first show in the byUnpropagated
 * index (the write's own delay after its invocation's clock was read, an index that lags): the
 * sweeper's look at settles starts this far before where its last look ended.
 */
export const SETTLE_SHOWS_WITHIN_MS = 60_000;

/**
 * Where the sweeper's look at settled derivations starts (docs/reliability.md, "No job hangs"):
 * settled derivations stay in the index once told (taking them out would be a write per
 * build), so each sweep looks from `SETTLE_SHOWS_WITHIN_MS` before where the last one ended
 * (`lastEnd`, an ISO time; none: from the index's start), whatever the time between sweeps,
 * for settles that showed late — and no later than that before `before`, the end of this
 * look (a clock that went back). Returns an ISO time.
 */
export function settledLookFrom(lastEnd: string | undefined, before: Date): string | undefined {
  if (lastEnd === undefined) return undefined;
  const back = (ms: number) => new Date(ms - SETTLE_SHOWS_WITHIN_MS).toISOString();
  const [fromLast, fromBefore] = [back(Date.parse(lastEnd)), back(before.getTime())];
  return fromLast < fromBefore ? fromLast : fromBefore;
}
