import type { DerivationStatus } from "@nimbus/protocol";
import { isFailure, isSuccess } from "./statuses.ts";

/**
 * A job's derivation as its verdict sees it (docs/effects.md, "Attribute types"): its status,
 * and whether the evaluation excused it — needed only by may-fail attributes (`may-fail`), or a
 * must-fail attribute's own derivation (`must-fail`).
 */
export interface VerdictRow {
  status: DerivationStatus;
  excused?: "may-fail" | "must-fail";
}

export interface RowVerdict {
  /** How many rows are in each status. */
  counts: Partial<Record<DerivationStatus, number>>;
  /** Failures that fail the job: failed or dependency-failed, and not excused. */
  failures: number;
  /** Must-fail derivations that did not fail by themselves: built (or already valid), or never built because an input failed. */
  unmetMustFail: number;
}

export function rowVerdict(rows: readonly VerdictRow[]): RowVerdict {
  const counts: Partial<Record<DerivationStatus, number>> = {};
  let failures = 0;
  let unmetMustFail = 0;
  for (const row of rows) {
    counts[row.status] = (counts[row.status] ?? 0) + 1;
    if (row.excused === undefined && isFailure(row.status)) failures++;
    if (row.excused === "must-fail" && (isSuccess(row.status) || row.status === "dependency-failed")) unmetMustFail++;
  }
  return { counts, failures, unmetMustFail };
}

/** Why a must-fail derivation fails its job, for the job's failures (absent: it failed, as it must). */
export function mustFailProblem(status: DerivationStatus): string | undefined {
  if (isSuccess(status)) return "it must fail (requireFailure), but it built";
  if (status === "dependency-failed") return "it must fail (requireFailure), but an input failed first, so it never ran";
  return undefined;
}
