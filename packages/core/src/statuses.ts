import type { DerivationStatus } from "@nimbus/protocol";

/** Statuses a derivation does not leave on its own (only a rebuild or rerun moves them). */
export const SETTLED: readonly DerivationStatus[] = ["succeeded", "failed", "dependency-failed", "cancelled", "cached"];
export const UNSETTLED: readonly DerivationStatus[] = ["waiting", "queued", "building"];
export const FAILURES: readonly DerivationStatus[] = ["failed", "dependency-failed"];

export const isSettled = (s: DerivationStatus) => SETTLED.includes(s);
/** Outputs exist: dependents may go ahead. */
export const isSuccess = (s: DerivationStatus) => s === "succeeded" || s === "cached";
export const isFailure = (s: DerivationStatus) => FAILURES.includes(s);

/**
 * Every move a derivation's status may make. Writers pass the allowed `from` statuses as the
 * condition of their DynamoDB update, so a duplicate or late message changes nothing.
 */
const MOVES: Record<DerivationStatus, readonly DerivationStatus[]> = {
  waiting: ["queued", "dependency-failed", "cancelled"],
  queued: ["building", "cancelled"],
  // Back to queued when the build must be retried (agent lost, exceptional result).
  building: ["succeeded", "failed", "queued", "cancelled"],
  succeeded: [],
  cached: [],
  // A user's rebuild (or a rerun that needs it again) starts these over.
  failed: ["waiting"],
  "dependency-failed": ["waiting"],
  cancelled: ["waiting"],
};

export const canMove = (from: DerivationStatus, to: DerivationStatus) => MOVES[from].includes(to);

/** The statuses from which `to` may be reached: the condition list for a write. */
export const movesInto = (to: DerivationStatus): DerivationStatus[] =>
  (Object.keys(MOVES) as DerivationStatus[]).filter((from) => MOVES[from].includes(to));
