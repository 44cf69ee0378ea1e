/**
 * A job's derivations counted per status, kept on the Jobs item (`count_<status>`) so the job
 * page's poll is one GetItem, not a count over 100,000 index rows (docs/dashboard-api.md).
 *
 * Every write of a JobDerivations row says what it replaced (storage/job-derivations.ts), so
 * each one is a move between two statuses. A build's start is no move of its jobs' rows nor of
 * their counts: a build under way is counted as its row says (`queued`, or `waiting` when handed
 * over), and the job's view tells builds under way apart (flow/job-view.ts). `building` rows
 * written before that are counted as `queued`. Moves are collected per handler invocation (the
 * edges open a `countingMoves` scope) and written as one `ADD` per job at its end, not one
 * write per move; outside a scope a move is written at once. A Lambda that dies before its
 * flush leaves a count off while the job runs: when the job ends (or its cancellation does), the
 * count of a consistent read is stored, and later flushes leave a finished job alone.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { UNSETTLED } from "@nimbus/core";
import { DerivationStatus } from "@nimbus/protocol";
import { anyOf } from "./condition-terms.ts";
import type { JobItem } from "./items.ts";
import { Jobs } from "./tables.ts";

export type StatusCounts = Partial<Record<DerivationStatus, number>>;
type CountField = `count_${DerivationStatus}`;

const countField = (status: DerivationStatus): CountField => `count_${status}`;

/** The status a move is counted under: a build under way is counted as queued (the view splits them). */
const countedAs = (status: DerivationStatus | undefined): DerivationStatus | undefined => (status === "building" ? "queued" : status);

/** Moves not yet written: job → status → change. */
class CountMoves {
  readonly byJob = new Map<string, Map<DerivationStatus, number>>();

  add(jobId: string, fromStatus: DerivationStatus | undefined, toStatus: DerivationStatus | undefined): void {
    const [from, to] = [countedAs(fromStatus), countedAs(toStatus)];
    if (from === to) return;
    const counts = this.byJob.get(jobId) ?? new Map<DerivationStatus, number>();
    this.byJob.set(jobId, counts);
    if (from) counts.set(from, (counts.get(from) ?? 0) - 1);
    if (to) counts.set(to, (counts.get(to) ?? 0) + 1);
  }
}

const scope = new AsyncLocalStorage<CountMoves>();

/**
 * Runs `fn` collecting the count moves it makes, then writes them: one update per job. Nested
 * scopes join the outer one.
 */
export async function countingMoves<T>(fn: () => Promise<T>): Promise<T> {
  if (scope.getStore()) return fn();
  const moves = new CountMoves();
  try {
    return await scope.run(moves, fn);
  } finally {
    await writeMoves(moves);
  }
}

/**
 * Writes the moves collected so far in this scope now, not at its end: for a reader in the same
 * invocation that must see them (a GitHub report of the job's counts, flow/job-reports.ts).
 */
export async function writeCountMovesNow(): Promise<void> {
  const moves = scope.getStore();
  if (!moves || moves.byJob.size === 0) return;
  const pending = new CountMoves();
  for (const [jobId, changes] of moves.byJob) pending.byJob.set(jobId, changes);
  moves.byJob.clear();
  await writeMoves(pending);
}

/**
 * Writes the moves of one job collected so far in this scope now, and returns the job after
 * them: its kept counts then hold every move written so far, by any invocation. Undefined when
 * this scope has none of its moves, or the write was refused (a finished job, one that keeps no
 * counts, or none): the caller reads the job then.
 */
export async function writeJobMovesReturning(jobId: string): Promise<JobItem | undefined> {
  const changes = scope.getStore()?.byJob.get(jobId);
  if (!changes) return undefined;
  scope.getStore()!.byJob.delete(jobId);
  const update = countUpdate(changes);
  return update ? Jobs.updateReturning({ jobId }, update, "ALL_NEW") : undefined;
}

/** A JobDerivations row went from `from` (absent: it is new) to `to`. */
export async function noteCountMove(jobId: string, from: DerivationStatus | undefined, to: DerivationStatus): Promise<void> {
  if (countedAs(from) === countedAs(to)) return;
  const moves = scope.getStore();
  if (moves) return moves.add(jobId, from, to);
  const once = new CountMoves();
  once.add(jobId, from, to);
  await writeMoves(once);
}

/** A job whose counts are kept on its item (jobs made before that are counted from an index). */
const COUNTED = ["attribute_exists(jobId)", "countsKept = :kept"];

/** The write that adds one job's moves to its counts; undefined when they cancel out. */
function countUpdate(changes: Map<DerivationStatus, number>) {
  const nonZero = [...changes].filter(([, n]) => n !== 0);
  if (nonZero.length === 0) return undefined;
  const names = Object.fromEntries(nonZero.map(([status], i) => [`#c${i}`, countField(status)]));
  const values = Object.fromEntries(nonZero.map(([, n], i) => [`:c${i}`, n]));
  // A finished job's counts were set exactly when it ended: later moves leave them alone. A
  // job being cancelled (flow/job-cancel.ts) is finished but still moving: counted until it ends.
  return {
    UpdateExpression: `ADD ${nonZero.map((_, i) => `#c${i} :c${i}`).join(", ")}`,
    ConditionExpression: anyOf([...COUNTED, "attribute_not_exists(finishedAt)"], [...COUNTED, "attribute_exists(cancelling)"]),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: { ...values, ":kept": true },
  };
}

async function writeMoves(moves: CountMoves): Promise<void> {
  await Promise.all(
    [...moves.byJob].map(([jobId, changes]) => {
      const update = countUpdate(changes);
      return update && Jobs.update({ jobId }, update);
    }),
  );
}

/**
 * The counts a job keeps (statuses with none left out), or undefined for a job made before it
 * kept them. A finished job's are exact per status (`countsExact`); a running job's `queued` and
 * `waiting` hold its builds under way too, as their rows do (`count_building`, of a job whose
 * moves were counted apart before, is added into `queued`): `splitUnderWay` tells them apart.
 */
export function keptCounts(job: JobItem): StatusCounts | undefined {
  if (!job.countsKept) return undefined;
  const exact = countsExact(job);
  // Summed as stored, each under the status it is counted as: a count_queued below zero is a build under way that count_building holds.
  const sums: StatusCounts = {};
  for (const status of DerivationStatus.options) {
    const as = exact ? status : countedAs(status)!;
    sums[as] = (sums[as] ?? 0) + (job[countField(status)] ?? 0);
  }
  return Object.fromEntries(Object.entries(sums).filter(([, n]) => n > 0));
}

/** Whether a job's kept counts are exact per status: it ended, and no cancellation still moves them (they were stored from a read of its rows). */
export const countsExact = (job: Pick<JobItem, "finishedAt" | "cancelling">): boolean => job.finishedAt !== undefined && job.cancelling === undefined;

/**
 * A running job's kept counts with its builds under way told apart, given what the job's row of
 * each says (a build's start is no move of its rows: `queued` for a dispatch, `waiting` for a
 * hand-over, `building` for a row written before that). Each is taken from the number its row
 * is counted under, never below zero: the index that found them may lag the counts.
 */
export function splitUnderWay(kept: StatusCounts, rowsUnderWay: readonly DerivationStatus[]): StatusCounts {
  const split: StatusCounts = { ...kept };
  let building = 0;
  for (const row of rowsUnderWay) {
    const as = countedAs(row);
    if (!as || !UNSETTLED.includes(as) || !split[as]) continue;
    split[as]--;
    building++;
  }
  return Object.fromEntries(Object.entries({ ...split, building }).filter(([, n]) => n > 0));
}

/**
 * How many of a job's derivations its kept counts hold unsettled (waiting, queued or building),
 * or undefined for a job that keeps no counts. Summed, so that a move between two unsettled
 * statuses another invocation has not written yet (queued → building) changes nothing.
 */
export function keptUnsettled(job: JobItem): number | undefined {
  if (!job.countsKept) return undefined;
  return UNSETTLED.reduce((sum, status) => sum + (job[countField(status)] ?? 0), 0);
}

/** The fields that set a job's counts to exactly these, for the write that ends the job. */
export function exactCountFields(counts: StatusCounts): Partial<Record<CountField, number>> {
  return Object.fromEntries(DerivationStatus.options.map((status) => [countField(status), counts[status] ?? 0]));
}
