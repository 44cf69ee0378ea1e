/**
 * Each job keeps a copy of the status of every derivation it needs (for paging and counting
 * by status). Copies are ordered by the derivation's `version` — the count of its status
 * moves — never by a clock: handlers do not share one, and a later write may carry an older
 * stamp (docs/reliability.md, "No job hangs").
 */
import type { DerivationStatus } from "@nimbus/protocol";
import { UNSETTLED } from "./statuses.ts";

export interface StatusCopy {
  status: DerivationStatus;
  /** Absent on copies written before versions (and on `cached` rows, which no build made). */
  version?: number;
}

/** Whether a copy at `row` should take the derivation's status at `version`. */
export const isNewerThan = (version: number, row: Pick<StatusCopy, "version">): boolean => row.version === undefined || row.version < version;

/**
 * What a job's row of a derivation shows: its copy, but for a build under way. A build's start
 * is no move of its jobs' rows (docs/scale.md): a row that says `waiting` (a hand-over) or
 * `queued` (a dispatch) of a derivation now `building` shows `building`.
 */
export function shownStatus(row: DerivationStatus, derivation: DerivationStatus | undefined): DerivationStatus {
  return derivation === "building" && UNSETTLED.includes(row) ? "building" : row;
}

/**
 * The copies a job should write again because its rows were left behind by their derivations
 * (a mirror that missed the row): the derivation's status and version for each row behind.
 */
export function rowsBehind(
  rows: readonly (StatusCopy & { drvPath: string })[],
  derivationOf: (drvPath: string) => StatusCopy | undefined,
): (StatusCopy & { drvPath: string; version: number })[] {
  return rows.flatMap((row) => {
    const drv = derivationOf(row.drvPath);
    // A build under way is no move of its rows: a row of it that shows it is in step.
    if (!drv || shownStatus(row.status, drv.status) === drv.status) return [];
    const version = drv.version ?? 0;
    return isNewerThan(version, row) ? [{ drvPath: row.drvPath, status: drv.status, version }] : [];
  });
}

/** A job's copy as a settle's look reads it: absent when the job has no row of the derivation (yet). */
export interface ToldCopy {
  version?: number;
  /** The version whose settle had told every dependent when it wrote this copy (docs/reliability.md, "No job hangs"). */
  told?: number;
}

/**
 * Whether a derivation settled at `version` has told its dependents and its jobs: every job
 * that needs it holds a copy its settle wrote once its dependents were told (`told`), or one
 * of a later version (it moved on: that move is told in its turn). A missing row, a copy a
 * registration wrote (no `told`), no job at all, or a settle still going through its pages
 * (`paging`) is not: the sweeper tells it again, which changes nothing twice.
 */
export function settleTold(settled: { version: number; paging: boolean }, copies: readonly (ToldCopy | undefined)[]): boolean {
  if (settled.paging || copies.length === 0) return false;
  return copies.every((copy) => copy !== undefined && ((copy.version ?? -1) > settled.version || (copy.told ?? -1) >= settled.version));
}
