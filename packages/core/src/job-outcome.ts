import type { DerivationStatus, JobStatus } from "@nimbus/protocol";

export interface JobProgress {
  evaluation: "queued" | "running" | "succeeded" | "failed";
  attributeErrors: number;
  /** How many of the job's derivations are in each status (only presence matters). */
  counts: Partial<Record<DerivationStatus, number>>;
}

/**
 * The job's status from its evaluation and derivations: still running while anything is
 * unsettled; failed if evaluation, an attribute or a derivation failed; else succeeded.
 */
export function jobOutcome(progress: JobProgress): JobStatus {
  const { evaluation, counts } = progress;
  if (evaluation === "failed") return "failed";
  if (evaluation !== "succeeded") return "evaluating";
  const has = (s: DerivationStatus) => (counts[s] ?? 0) > 0;
  if (has("waiting") || has("queued") || has("building")) return "building";
  if (progress.attributeErrors > 0 || has("failed") || has("dependency-failed")) return "failed";
  if (has("cancelled")) return "cancelled";
  return "succeeded";
}
