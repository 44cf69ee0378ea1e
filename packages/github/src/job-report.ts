/**
 * What Nimbus tells GitHub about one job: the value the service builds from its tables and
 * the renderers turn into check-run or commit-status requests.
 */
import { AttributePath, DerivationStatus, DrvPath } from "@nimbus/protocol";
import { z } from "zod";

export const CommitSha = z.string().regex(/^[0-9a-f]{40}$/, "a full commit sha");
/** `owner/name`, as GitHub spells it. */
export const RepositoryName = z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "owner/name");

/** `held`: a fork's pull request waiting for a maintainer's approval (docs/github.md). */
export const ReportStatus = z.enum(["held", "queued", "evaluating", "building", "succeeded", "failed", "cancelled"]);
export type ReportStatus = z.infer<typeof ReportStatus>;
export const TERMINAL_STATUSES: readonly ReportStatus[] = ["succeeded", "failed", "cancelled"];
export const isTerminal = (status: ReportStatus) => TERMINAL_STATUSES.includes(status);

export const ReportedFailure = z.strictObject({
  /** The attribute that led to the derivation, when known. */
  attribute: AttributePath.optional(),
  drvPath: DrvPath,
  status: z.enum(["failed", "dependency-failed"]),
  /** One line: why, as a user reads it. */
  reason: z.string().max(4096),
  /** The log's last lines (the renderer shows a few of them). */
  logTail: z.array(z.string()).max(10_000).default([]),
});
export type ReportedFailure = z.infer<typeof ReportedFailure>;

export const ReportedAttributeError = z.strictObject({
  attribute: AttributePath,
  message: z.string(),
});
export type ReportedAttributeError = z.infer<typeof ReportedAttributeError>;

export const JobReport = z.strictObject({
  jobId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a job id"),
  /** The job's name: the check is `nimbus/<name>` (`onPush` until herculesCI jobs have names). */
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "a job name").default("onPush"),
  repository: RepositoryName,
  commit: CommitSha,
  status: ReportStatus,
  /**
   * Grows with every change of the job (e.g. its update count, or its updatedAt in ms): a
   * report with a lower version than the one last sent is stale and never sent.
   */
  version: z.int().nonnegative(),
  createdAt: z.iso.datetime(),
  /** When evaluation started (the check run's `started_at`). */
  startedAt: z.iso.datetime().optional(),
  finishedAt: z.iso.datetime().optional(),
  /** Derivations of the job in each status. */
  counts: z.partialRecord(DerivationStatus, z.int().nonnegative()).default({}),
  evaluationError: z.string().optional(),
  attributeErrors: z.array(ReportedAttributeError).default([]),
  /** All attribute errors, when `attributeErrors` holds only the first ones. */
  attributeErrorCount: z.int().nonnegative().optional(),
  failures: z.array(ReportedFailure).default([]),
  /** All failed and dependency-failed derivations, when `failures` holds only the first ones. */
  failureCount: z.int().nonnegative().optional(),
  /** The job's page in the dashboard (links.ts: `jobUrl`). */
  dashboardUrl: z.url({ protocol: /^https?$/ }),
  /** For `held`: why, and how to approve. */
  hold: z.strictObject({ reason: z.string(), approvalLabel: z.string() }).optional(),
});
export type JobReport = z.infer<typeof JobReport>;
export type JobReportInput = z.input<typeof JobReport>;

export const checkName = (report: Pick<JobReport, "name">) => `nimbus/${report.name}`;

export function splitRepository(repository: string): { owner: string; repo: string } {
  const [owner = "", repo = ""] = repository.split("/");
  return { owner, repo };
}
