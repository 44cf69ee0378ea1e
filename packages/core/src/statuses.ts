import type { DerivationStatus, JobStatus } from "@nimbus/protocol";

/** Statuses a derivation does not leave on its own (only a rebuild or rerun moves them). */
export const SETTLED: readonly DerivationStatus[] = ["succeeded", "failed", "dependency-failed", "cancelled", "cached"];
export const UNSETTLED: readonly DerivationStatus[] = ["waiting", "queued", "building"];
export const FAILURES: readonly DerivationStatus[] = ["failed", "dependency-failed"];
/** Settled by a build or its inputs: dependents and jobs must be told (the sweeper's byUnpropagated index). */
export const PROPAGATING: readonly DerivationStatus[] = ["succeeded", "failed", "dependency-failed"];
/** Failures a user must ask to rebuild; cancellations restart whenever a job needs them again. */
export const RESTARTABLE: readonly DerivationStatus[] = ["failed", "dependency-failed", "cancelled"];

export const isSettled = (s: DerivationStatus) => SETTLED.includes(s);
/** Outputs exist: dependents may go ahead. */
export const isSuccess = (s: DerivationStatus) => s === "succeeded" || s === "cached";
export const isFailure = (s: DerivationStatus) => FAILURES.includes(s);

/** Whether a derivation a job needs again starts over: a cancellation always, a failure only on request. */
export const shouldRestart = (status: DerivationStatus, rebuildFailures: boolean): boolean =>
  RESTARTABLE.includes(status) && (status === "cancelled" || rebuildFailures);

/**
 * Every move a derivation's status may make. Writers pass the allowed `from` statuses as the
 * condition of their DynamoDB update, so a duplicate or late message changes nothing.
 */
const MOVES: Record<DerivationStatus, readonly DerivationStatus[]> = {
  // Straight to building when handed to the agent whose result readied it (core hand-over.ts).
  waiting: ["queued", "building", "dependency-failed", "cancelled"],
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

/** A job still runs while it evaluates or builds; the other statuses are final. */
export const ACTIVE_JOB_STATUSES: readonly JobStatus[] = ["evaluating", "building"];
export const isActiveJob = (status: JobStatus) => ACTIVE_JOB_STATUSES.includes(status);

/** What cancelling a job does to one derivation it needs. */
export type CancelStep = "leave" | "stop-build" | "cancel";

/**
 * Cancelling a job (docs/reliability.md, "Cancelling a job"): its unsettled derivations are
 * cancelled — a running build stopped on its agent — unless another running job needs them.
 */
export function cancelStep(status: DerivationStatus | undefined, neededElsewhere: boolean): CancelStep {
  if (!status || !UNSETTLED.includes(status) || neededElsewhere) return "leave";
  return status === "building" ? "stop-build" : "cancel";
}
