/** The words a report uses, shared by check runs and commit statuses. */
import type { DerivationStatus } from "@nimbus/protocol";
import type { JobReport } from "./job-report.ts";

/** Order in which counts are listed: what needs attention first. */
const COUNT_ORDER: ReadonlyArray<[DerivationStatus, string]> = [
  ["failed", "failed"],
  ["dependency-failed", "dependency failed"],
  ["cancelled", "cancelled"],
  ["building", "building"],
  ["queued", "queued"],
  ["waiting", "waiting"],
  ["succeeded", "built"],
  ["cached", "cached"],
];

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function totalDerivations(report: JobReport): number {
  return Object.values(report.counts).reduce((sum, n) => sum + (n ?? 0), 0);
}

/** "2 failed, 1 dependency failed, 40 built, 3 cached" (only the statuses present). */
export function countsText(report: JobReport): string {
  return COUNT_ORDER.filter(([status]) => (report.counts[status] ?? 0) > 0)
    .map(([status, word]) => `${report.counts[status]} ${word}`)
    .join(", ");
}

export function attributeErrorTotal(report: JobReport): number {
  return Math.max(report.attributeErrorCount ?? 0, report.attributeErrors.length);
}

export function failureTotal(report: JobReport): number {
  const counted = (report.counts.failed ?? 0) + (report.counts["dependency-failed"] ?? 0);
  return Math.max(report.failureCount ?? 0, report.failures.length, counted);
}

/** One short line: the check run's title and, cut to 140 characters, the commit status's description. */
export function headline(report: JobReport): string {
  const total = totalDerivations(report);
  switch (report.status) {
    case "held":
      return "Waiting for approval: a pull request from a fork";
    case "queued":
      return "Queued";
    case "evaluating":
      return "Evaluating";
    case "building": {
      const settled =
        (report.counts.succeeded ?? 0) +
        (report.counts.cached ?? 0) +
        (report.counts.failed ?? 0) +
        (report.counts["dependency-failed"] ?? 0) +
        (report.counts.cancelled ?? 0);
      return `Building: ${settled} of ${plural(total, "derivation")} done`;
    }
    case "succeeded":
      return total === 0 ? "Succeeded: nothing to build" : `Succeeded: ${plural(total, "derivation")} built or cached`;
    case "cancelled":
      return "Cancelled";
    case "failed": {
      if (report.evaluationError !== undefined) return "Failed: evaluation error";
      const parts = [];
      const failures = failureTotal(report);
      const attributeErrors = attributeErrorTotal(report);
      if (failures > 0) parts.push(plural(failures, "failed derivation"));
      if (attributeErrors > 0) parts.push(plural(attributeErrors, "attribute error"));
      return parts.length > 0 ? `Failed: ${parts.join(", ")}` : "Failed";
    }
  }
}
