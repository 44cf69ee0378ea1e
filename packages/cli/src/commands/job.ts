import { printable, printableLines } from "@nimbus/agent/terminal-text";
import { DerivationPage, JobView } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { CliError } from "../cli-error.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

const FINISHED = new Set<JobView["status"]>(["succeeded", "failed", "cancelled"]);
/** Polling starts quick (a small job is done in seconds) and backs off so a long one costs little. */
const FIRST_POLL_MS = 500;
const MAX_POLL_MS = 2_000;

export function registerJobCommand(program: Command) {
  program
    .command("job <id>")
    .description("a job's status, commit, derivation counts and failures")
    .option("--wait", "wait until the job finishes; exit 0 if it succeeded, 1 if it failed or was cancelled")
    .option("--json", "print the job as JSON (GET /api/jobs/{id})")
    .action(async (id: string, options: { wait?: boolean; json?: boolean }, command: Command) => {
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const path = `/api/jobs/${encodeURIComponent(id)}`;
      let job = await api.get(path, JobView);
      if (options.wait) {
        let delay = FIRST_POLL_MS;
        let last = progress(job);
        if (!FINISHED.has(job.status)) process.stderr.write(`${last}\n`);
        while (!FINISHED.has(job.status)) {
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(MAX_POLL_MS, delay * 1.5);
          job = await api.get(path, JobView);
          if (progress(job) !== last) process.stderr.write(`${(last = progress(job))}\n`);
        }
      }
      if (options.json) process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
      else process.stdout.write(describeJob(job, ...((job.counts.queued ?? 0) > 0 ? await whyQueued(api, job.id) : [[], []])));
      if (options.wait && job.status !== "succeeded") throw new CliError(`job ${job.id} ${job.status}`, 1);
    });
}

function countsLine(job: JobView): string {
  const entries = Object.entries(job.counts).filter(([, n]) => n > 0);
  if (entries.length === 0) return FINISHED.has(job.status) ? "none" : "none yet";
  return entries.map(([status, n]) => `${n} ${status}`).join(", ");
}

/** One stderr line while waiting, printed when it changes. */
function progress(job: JobView): string {
  return printable(job.status === "evaluating" ? `${job.id}: evaluating (${job.evaluation.status})` : `${job.id}: ${job.status} — ${countsLine(job)}`);
}

/**
 * Why queued derivations wait: those no connected agent may build, grouped as
 * "2 × x86_64-darwin with {kvm}"; and those whose inputs no agent that may build them can
 * obtain, grouped by reason ("1 × inputs only on agent builder-1; no shared cache").
 */
async function whyQueued(api: ApiClient, jobId: string): Promise<[string[], string[]]> {
  const page = await api.get(`/api/jobs/${encodeURIComponent(jobId)}/derivations?status=queued&limit=200`, DerivationPage);
  const agents = new Map<string, number>();
  const inputs = new Map<string, number>();
  for (const { waitingForAgent: want, waitingForInputs: blocked } of page.derivations) {
    if (want) {
      const key = want.features.length ? `${want.system} with {${want.features.join(", ")}}` : want.system;
      agents.set(key, (agents.get(key) ?? 0) + 1);
    }
    if (blocked) inputs.set(blocked.reason, (inputs.get(blocked.reason) ?? 0) + 1);
  }
  const lines = (groups: Map<string, number>) => [...groups].map(([key, n]) => `${n} × ${key}`);
  return [lines(agents), lines(inputs)];
}

export function describeJob(job: JobView, waiting: string[] = [], waitingForInputs: string[] = []): string {
  const rows: Array<[string, string | undefined]> = [
    ["job", job.id],
    ["status", job.status],
    ["repository", job.repository],
    ["ref", job.ref],
    ["handler", job.handler && `${job.handler.kind}.${job.handler.name}`],
    ["commit", job.commit],
    ["trigger", [job.trigger.event, job.trigger.sender && `by ${job.trigger.sender}`].filter(Boolean).join(" ")],
    ["evaluation", [job.evaluation.status, job.evaluation.agent && `on ${job.evaluation.agent}`].filter(Boolean).join(" ")],
    ["derivations", countsLine(job)],
    ["created", job.createdAt],
    ["finished", job.finishedAt],
  ];
  // Repository names, refs, errors and logs come from repositories and agents: shown as text only.
  const lines = rows.filter(([, v]) => v).map(([k, v]) => `${k.padEnd(12)}${printable(v!)}`);
  if (job.status === "held") {
    // A fork's job runs nothing until someone with write access approves its commit (docs/github.md).
    lines.push("", "held for approval:", `  ${printable(job.holdReason ?? "it runs once someone with write access approves its commit")}`);
    const label = job.approvalLabel !== undefined ? `, or the label ${printable(job.approvalLabel)} on the pull request` : "";
    lines.push(`  approve it on GitHub: Approve and run on its check run${label}`);
  }
  if (job.evaluation.error) lines.push("", "evaluation failed:", indent(printableLines(job.evaluation.error), "  "));
  if (job.evaluation.cacheProblems?.length) {
    lines.push("", "cache problems during the evaluation:");
    for (const problem of job.evaluation.cacheProblems) lines.push(`  ${printable(problem)}`);
  }
  if (waiting.length > 0) {
    lines.push("", "waiting for an agent that can build them (none connected):");
    for (const group of waiting) lines.push(`  ${printable(group)}`);
  }
  if (waitingForInputs.length > 0) {
    lines.push("", "waiting for an agent that can obtain their inputs:");
    for (const group of waitingForInputs) lines.push(`  ${group}`);
  }
  const attributeErrors = job.attributes.filter((a) => a.status === "error" || a.problem !== undefined);
  if (attributeErrors.length > 0) {
    lines.push("", "attribute errors:");
    for (const a of attributeErrors) lines.push(`  ${printable(a.path.join("."))}: ${indent(printableLines(a.error ?? a.problem ?? "evaluation failed"), "    ").trimStart()}`);
  }
  if (job.effects?.length) {
    lines.push("", "effects:");
    for (const e of job.effects) {
      const where = e.agent ? ` on ${printable(e.agent)}` : "";
      lines.push(`  ${printable(e.path.join("."))}: ${e.status}${where}${e.error ? ` — ${printable(e.error)}` : ""}`);
      if (e.status === "failed") for (const line of e.logTail ?? []) lines.push(`    | ${printable(line)}`);
    }
  }
  if (job.failures.length > 0) {
    lines.push("", "failed derivations:");
    for (const f of job.failures) {
      const exit = f.exitCode !== undefined && !f.reason.includes("exit code") ? ` (exit code ${f.exitCode})` : "";
      const excused = f.excused ? ` (${f.excused}: does not fail the job)` : "";
      lines.push(`  ${f.drvPath}: ${f.status}: ${printable(f.reason)}${exit}${excused}`);
      if (f.dependency) lines.push(`    because ${f.dependency} failed`);
      for (const line of f.logTail ?? []) lines.push(`    | ${printable(line)}`);
    }
    const failed = (job.counts.failed ?? 0) + (job.counts["dependency-failed"] ?? 0);
    if (failed > job.failures.length) lines.push(`  … and ${failed - job.failures.length} more (GET /api/jobs/${job.id}/derivations?status=failed)`);
  }
  return `${lines.join("\n")}\n`;
}

const indent = (text: string, prefix: string) =>
  text
    .split("\n")
    .map((l) => prefix + l)
    .join("\n");
