/**
 * Each job keeps a copy of the status of every derivation it needs (for paging and counting
 * by status). Copies are ordered by the derivation's `version` — the count of its status
 * moves — never by a clock: handlers do not share one, and a later write may carry an older
 * stamp (docs/reliability.md, "No job hangs").
 */
import type { DerivationStatus } from "@nimbus/protocol";

export interface StatusCopy {
  status: DerivationStatus;
  /** Absent on copies written before versions (and on `cached` rows, which no build made). */
  version?: number;
}

/** Whether a copy at `row` should take the derivation's status at `version`. */
export const isNewerThan = (version: number, row: Pick<StatusCopy, "version">): boolean => row.version === undefined || row.version < version;

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
    if (!drv || drv.status === row.status) return [];
    const version = drv.version ?? 0;
    return isNewerThan(version, row) ? [{ drvPath: row.drvPath, status: drv.status, version }] : [];
  });
}
