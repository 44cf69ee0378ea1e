/**
 * A job report as the body of GitHub's check-run requests
 * (`POST /repos/{owner}/{repo}/check-runs`, `PATCH /repos/{owner}/{repo}/check-runs/{id}`),
 * within GitHub's limits: an output summary of at most 65,535 characters.
 */
import { checkName, isTerminal, splitRepository, type JobReport, type ReportedFailure } from "./job-report.ts";
import { logUrl } from "./links.ts";
import { attributePathText, codeBlock, markdownLink, markdownText, truncate } from "./markdown-text.ts";
import { attributeErrorTotal, countsText, failureTotal, headline } from "./report-text.ts";

/** GitHub's limit for `output.summary` (and `output.text`). */
export const MAX_SUMMARY_CHARS = 65_535;
/** The identifier of the "Approve and run" button on a held fork's check run. */
export const APPROVE_ACTION = "approve";

export type CheckRunStatus = "queued" | "in_progress" | "completed";
export type CheckRunConclusion = "success" | "failure" | "cancelled" | "action_required";

/** The fields create and update share. */
export interface CheckRunFields {
  name: string;
  external_id: string;
  details_url: string;
  status: CheckRunStatus;
  started_at?: string;
  conclusion?: CheckRunConclusion;
  completed_at?: string;
  output: { title: string; summary: string };
  actions?: Array<{ label: string; description: string; identifier: string }>;
}

export interface CreateCheckRunRequest {
  owner: string;
  repo: string;
  body: CheckRunFields & { head_sha: string };
}

export interface UpdateCheckRunRequest {
  owner: string;
  repo: string;
  check_run_id: number;
  body: CheckRunFields;
}

export interface SummaryLimits {
  /** Failed derivations listed at most (the rest are counted, with a link). */
  maxFailures: number;
  /** Attribute errors listed at most. */
  maxAttributeErrors: number;
  /** Last log lines shown per failure. */
  logLines: number;
  /** Characters kept of one log or error line. */
  lineChars: number;
  /** Characters the whole summary may use (GitHub's limit, or less in tests). */
  summaryChars: number;
}

export const DEFAULT_SUMMARY_LIMITS: SummaryLimits = {
  maxFailures: 300,
  maxAttributeErrors: 100,
  logLines: 5,
  lineChars: 200,
  summaryChars: MAX_SUMMARY_CHARS,
};

export function checkRunStatus(report: JobReport): { status: CheckRunStatus; conclusion?: CheckRunConclusion } {
  switch (report.status) {
    case "queued":
      return { status: "queued" };
    case "evaluating":
    case "building":
      return { status: "in_progress" };
    case "held":
      return { status: "completed", conclusion: "action_required" };
    case "succeeded":
      return { status: "completed", conclusion: "success" };
    case "failed":
      return { status: "completed", conclusion: "failure" };
    case "cancelled":
      return { status: "completed", conclusion: "cancelled" };
  }
}

/** Everything but `head_sha`: what an update sends, and a create too. */
export function checkRunFields(report: JobReport, limits: SummaryLimits = DEFAULT_SUMMARY_LIMITS): CheckRunFields {
  const { status, conclusion } = checkRunStatus(report);
  const fields: CheckRunFields = {
    name: checkName(report),
    external_id: report.jobId,
    details_url: report.dashboardUrl,
    status,
    output: { title: headline(report), summary: summary(report, limits) },
  };
  if (status !== "queued" && report.status !== "held") fields.started_at = report.startedAt ?? report.createdAt;
  if (conclusion) fields.conclusion = conclusion;
  if (isTerminal(report.status) && report.finishedAt) fields.completed_at = report.finishedAt;
  if (report.status === "held") {
    // GitHub limits: label ≤ 20, description ≤ 40, identifier ≤ 20 characters.
    fields.actions = [{ label: "Approve and run", description: "Build it: no secrets, no effects", identifier: APPROVE_ACTION }];
  }
  return fields;
}

export function createCheckRunRequest(report: JobReport, limits?: SummaryLimits): CreateCheckRunRequest {
  const { owner, repo } = splitRepository(report.repository);
  return { owner, repo, body: { ...checkRunFields(report, limits), head_sha: report.commit } };
}

export function updateCheckRunRequest(report: JobReport, checkRunId: number, limits?: SummaryLimits): UpdateCheckRunRequest {
  const { owner, repo } = splitRepository(report.repository);
  return { owner, repo, check_run_id: checkRunId, body: checkRunFields(report, limits) };
}

/**
 * The check run's Markdown summary: the counts and a link to the job, the evaluation error,
 * then tables of attribute errors and failed derivations for as many rows as fit, then a
 * line saying how many more there are and where to see them.
 */
export function summary(report: JobReport, limits: SummaryLimits = DEFAULT_SUMMARY_LIMITS): string {
  const job = markdownLink(`job ${report.jobId}`, report.dashboardUrl);
  const head: string[] = [];
  const counts = countsText(report);
  // The headline and counts are Nimbus's own words and numbers: no repository text in them.
  head.push(counts ? `**${headline(report)}** — ${counts}.` : `**${headline(report)}**.`);
  head.push(`Details, logs and the full list: ${job} on Nimbus.`);
  if (report.status === "held" && report.hold) {
    head.push(
      `${markdownText(report.hold.reason)} Someone with write access approves this commit with the “Approve and run” button ` +
        `above, or by adding the label **${markdownText(report.hold.approvalLabel)}** to the pull request ` +
        `(remove and add it again for a later commit). An approved fork is built without secrets and runs no effects.`,
    );
  }
  if (report.evaluationError !== undefined) {
    const lines = report.evaluationError.split(/\r?\n/);
    const last = lines.slice(-60).map((line) => truncate(line, limits.lineChars * 2)).join("\n");
    head.push(`### Evaluation error\n\n${codeBlock(truncate(last, 8_000))}`);
  }

  // What must fit whatever the tables take: the "and N more" lines.
  const reserve = 600;
  let text = head.join("\n\n");
  const budget = limits.summaryChars - reserve;
  const more: string[] = [];

  const attributeErrors = attributeErrorTotal(report);
  if (attributeErrors > 0) {
    const rows = report.attributeErrors.slice(0, limits.maxAttributeErrors).map(
      (e) => `| ${markdownText(attributePathText(e.attribute))} | ${cellLines(e.message.split(/\r?\n/), limits)} |`,
    );
    const table = fitTable(`\n\n### Attribute errors (${attributeErrors})\n\n| Attribute | Error |\n| --- | --- |`, rows, budget - text.length);
    text += table.text;
    if (attributeErrors > table.shown) more.push(`${attributeErrors - table.shown} more attribute errors`);
  }

  const failures = failureTotal(report);
  if (failures > 0) {
    // Failures that broke themselves first: their dependents only follow.
    const ordered = [...report.failures].sort((a, b) => rank(a) - rank(b)).slice(0, limits.maxFailures);
    const rows = ordered.map((f) => failureRow(report, f, limits));
    const table = fitTable(
      `\n\n### Failed derivations (${failures})\n\n| Attribute | Derivation | Why | Last lines of the log |\n| --- | --- | --- | --- |`,
      rows,
      budget - text.length,
    );
    text += table.text;
    if (failures > table.shown) more.push(`${failures - table.shown} more failed derivations`);
  }

  if (more.length > 0) text += `\n\n…and ${more.join(" and ")} — see ${job}.`;
  return text;
}

const rank = (f: ReportedFailure) => (f.status === "failed" ? 0 : 1);

function failureRow(report: JobReport, f: ReportedFailure, limits: SummaryLimits): string {
  const attribute = f.attribute ? markdownText(attributePathText(f.attribute)) : "";
  const derivation = markdownLink(derivationName(f.drvPath), logUrl(report.dashboardUrl, f.drvPath));
  const tail = f.logTail.slice(-limits.logLines);
  return `| ${attribute} | ${derivation} | ${markdownText(truncate(f.reason, limits.lineChars))} | ${cellLines(tail, limits)} |`;
}

/** `/nix/store/<hash>-hello-2.12.drv` → `hello-2.12`. */
export function derivationName(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf("/") + 1).replace(/\.drv$/, "");
  return base.replace(/^[0-9a-z]{32}-/, "");
}

/** Lines in one table cell: escaped, cut, joined with `<br>` (the only markup a cell can break lines with). */
function cellLines(lines: readonly string[], limits: SummaryLimits): string {
  const kept = lines.filter((line) => line.trim() !== "").slice(-limits.logLines);
  return kept.map((line) => markdownText(truncate(line, limits.lineChars))).join("<br>");
}

/** The table's header and as many rows as fit in `room` characters (none: not even the header). */
function fitTable(header: string, rows: readonly string[], room: number): { text: string; shown: number } {
  if (header.length > room) return { text: "", shown: 0 };
  let text = header;
  let shown = 0;
  for (const row of rows) {
    if (text.length + 1 + row.length > room) break;
    text += `\n${row}`;
    shown++;
  }
  return { text, shown };
}
