/**
 * A job's report from what the JSON API already shows of it (`GET /api/jobs/{id}`), so the
 * service builds reports with the view it has rather than new queries.
 */
import type { JobView } from "@nimbus/protocol";
import { JobReport, type ReportedFailure, type ReportStatus } from "./job-report.ts";
import { jobUrl } from "./links.ts";

export interface ReportOptions {
  publicUrl: string;
  /** The check is `nimbus/<name>`. */
  name?: string;
  /** A held fork (the service keeps holds; the view has no such status). */
  hold?: { reason: string; approvalLabel: string };
}

export function jobReportFromView(view: JobView, options: ReportOptions): JobReport {
  const attributeOf = new Map(view.attributes.filter((a) => a.drvPath).map((a) => [a.drvPath!, a.path]));
  // A must-fail attribute that built fails the job as an attribute does; excused failures do not (docs/effects.md).
  const attributeErrors = view.attributes
    .filter((a) => a.status === "error" || a.problem !== undefined)
    .map((a) => ({ attribute: a.path, message: a.error ?? a.problem ?? "evaluation error" }));
  const failures: ReportedFailure[] = view.failures.filter((f) => f.excused === undefined).map((f) => {
    const attribute = attributeOf.get(f.drvPath);
    return { ...(attribute ? { attribute } : {}), drvPath: f.drvPath, status: f.status, reason: f.reason, logTail: f.logTail ?? [] };
  });
  const failureCount = (view.counts.failed ?? 0) + (view.counts["dependency-failed"] ?? 0);
  return JobReport.parse({
    jobId: view.id,
    ...(options.name ? { name: options.name } : {}),
    repository: view.repository,
    commit: view.commit,
    status: reportStatus(view, options),
    // updatedAt moves forward with every change of the job item; equal versions are still compared by content.
    version: Date.parse(view.updatedAt),
    createdAt: view.createdAt,
    ...(view.evaluation.status !== "queued" ? { startedAt: view.createdAt } : {}),
    ...(view.finishedAt ? { finishedAt: view.finishedAt } : {}),
    counts: view.counts,
    ...(view.evaluation.status === "failed" ? { evaluationError: view.evaluation.error ?? "evaluation failed" } : {}),
    attributeErrors,
    failures,
    ...(failureCount > failures.length ? { failureCount } : {}),
    dashboardUrl: jobUrl(options.publicUrl, view.id),
    ...(options.hold ? { hold: options.hold } : {}),
  });
}

function reportStatus(view: JobView, options: ReportOptions): ReportStatus {
  if (options.hold) return "held";
  if (view.status === "evaluating" && view.evaluation.status === "queued") return "queued";
  return view.status;
}
