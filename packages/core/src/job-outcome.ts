import type { DerivationStatus, JobStatus } from "@nimbus/protocol";
import { isActiveJob } from "./statuses.ts";

export type EvaluationState = "queued" | "running" | "succeeded" | "failed";

export interface JobProgress {
  evaluation: EvaluationState;
  attributeErrors: number;
  /** How many of the job's derivations are in each status (only presence matters). */
  counts: Partial<Record<DerivationStatus, number>>;
}

/**
 * The job's status from its evaluation and derivations: still running while anything is
 * unsettled; failed if evaluation, an attribute or a derivation failed; else succeeded.
 * A cancelled derivation holds a running job up too: its own cancel ends a job directly, so
 * this is another job's cancel that did not see it needed the derivation (docs/reliability.md,
 * "Cancelling a job"), and the derivation is started again for it.
 */
export function jobOutcome(progress: JobProgress): JobStatus {
  const { evaluation, counts } = progress;
  if (evaluation === "failed") return "failed";
  if (evaluation !== "succeeded") return "evaluating";
  const has = (s: DerivationStatus) => (counts[s] ?? 0) > 0;
  if (has("waiting") || has("queued") || has("building") || has("cancelled")) return "building";
  if (progress.attributeErrors > 0 || has("failed") || has("dependency-failed")) return "failed";
  return "succeeded";
}

/**
 * How much reading finishing a job takes: nothing while it is over or still evaluating; after
 * a failed evaluation the counts decide at once; after a successful one a cheap look for
 * unsettled derivations comes first (most settles leave work behind), the full count only if
 * there is none.
 */
export type JobCheck = "leave" | "look-for-unsettled" | "count";

export function jobCheck(job: { status: JobStatus; evaluation: EvaluationState } | undefined): JobCheck {
  if (!job || !isActiveJob(job.status)) return "leave";
  if (job.evaluation === "failed") return "count";
  if (job.evaluation === "succeeded") return "look-for-unsettled";
  return "leave";
}

/** A job outcome that ends the job (the others mean it still runs). */
export const isFinalOutcome = (outcome: JobStatus): boolean => !isActiveJob(outcome);
