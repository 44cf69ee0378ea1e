/** What the benchmark prints when a run does not finish: where every unfinished derivation stands. */
import type { BenchAgent } from "./bench-agent.ts";
import type { DerivationRow, StackReads } from "./stack-reads.ts";
import type { Workload } from "./workload.ts";

/**
 * After a failure: where the derivations stand. Waiting ones whose inputs all succeeded are
 * stuck for sure (nothing will wake them), so they come first, then queued, building, the rest.
 */
export function diagnose(items: DerivationRow[], workload: Workload) {
  const byPath = new Map(items.map((i) => [i.drvPath, i]));
  const statuses: Record<string, number> = {};
  for (const item of items) statuses[item.status] = (statuses[item.status] ?? 0) + 1;
  const inputsOf = new Map(workload.derivations.map((d) => [d.drvPath, d.inputDrvs]));
  const inputsDone = (i: DerivationRow) => (inputsOf.get(i.drvPath) ?? []).every((input) => byPath.get(input)?.status === "succeeded");
  const rank = (i: DerivationRow) =>
    i.status === "waiting" && inputsDone(i) ? 0 : i.status === "queued" ? 1 : i.status === "building" ? 2 : i.status === "waiting" ? 4 : 3;
  const unsettled = items.filter((i) => i.status !== "succeeded");
  const stuckWaiting = unsettled.filter((i) => rank(i) === 0).length;
  const stuck = unsettled
    .sort((a, b) => rank(a) - rank(b) || a.drvPath.localeCompare(b.drvPath))
    .slice(0, 20)
    .map((i) => ({
      drvPath: i.drvPath,
      status: i.status,
      inputsAllSucceeded: inputsDone(i),
      queueKey: i.queueKey,
      attempt: i.attempt,
      pendingInputs: i.pendingInputs ? [...i.pendingInputs] : [],
      pendingRows: i.pendingRows ?? [],
      version: i.version,
      history: i.history,
      pendingParts: i.pendingParts ? [...i.pendingParts] : [],
      queuedAt: i.queuedAt,
      lease: i.lease,
      updatedAt: i.updatedAt,
    }));
  const lines = [
    `  Derivations table: ${items.length} of ${workload.derivations.length} items; by status ${JSON.stringify(statuses)}`,
    `  waiting although every input succeeded (stuck): ${stuckWaiting}`,
    ...stuck.map(
      (s) =>
        `    ${s.status.padEnd(10)} ${s.drvPath} queue=${s.queueKey} attempt=${s.attempt}` +
        (s.status === "waiting" ? ` inputsAllSucceeded=${s.inputsAllSucceeded} pending on item=${s.pendingInputs.length} in rows=${s.pendingRows.length} parts=${s.pendingParts.length}` : "") +
        (s.queuedAt ? ` queuedAt=${s.queuedAt}` : "") +
        (s.lease ? ` lease=${s.lease.taskId}@${s.lease.sessionId ?? s.lease.connectionId}` : "") +
        ` updatedAt=${s.updatedAt} version=${s.version}` +
        // A stuck one's moves say which step left it: printed whole.
        (s.status === "waiting" && s.inputsAllSucceeded ? `\n      history ${JSON.stringify(s.history ?? [])}; pending ${JSON.stringify([...s.pendingInputs, ...s.pendingRows])}` : ""),
    ),
  ];
  return { text: lines.join("\n"), data: { statuses, stuckWaiting, stuck } };
}

export function reportProblems(logLines: Array<{ line: string }>, agents: BenchAgent[], print: (line: string) => void) {
  if (logLines.length) {
    print(`  ${logLines.length} handler/runtime log line(s); first ones:`);
    for (const { line } of logLines.slice(0, 5)) print(`    ${line}`);
  }
  const problems = agents.flatMap((a) => a.problems);
  if (problems.length) {
    print(`  ${problems.length} agent-side problem(s); first ones:`);
    for (const p of problems.slice(0, 5)) print(`    ${p.agent}: ${p.what}`);
  }
}

/** The derivations, the build queues and the agents as the service sees them; printed, and returned for the JSON. */
export async function diagnoseStack(reads: StackReads, workload: Workload, agents: BenchAgent[], print: (line: string) => void) {
  const found: Record<string, unknown> = {};
  const attempt = async (what: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      print(`  (could not read ${what}: ${String(error)})`);
    }
  };
  await attempt("the Derivations table", async () => {
    const diagnosis = diagnose(await reads.derivations(), workload);
    print(diagnosis.text);
    found.derivations = diagnosis.data;
  });
  // Whether the ready work is still on its queues (visible: nobody was told; in flight: received and not settled).
  await attempt("the build queues", async () => {
    const depths = await reads.buildQueueDepths();
    print(`  build queues: ${depths.join("; ")}`);
    found.buildQueues = depths;
  });
  await attempt("the agents", async () => {
    const views = await reads.agents();
    const lines = agents.map((a) => {
      const view = views.find((v) => v.hostname === a.name);
      return `${a.name} answered ${a.builds.length} builds; service says ${view ? `${view.runningTasks}/${view.concurrentTasks} running` : "not connected"}`;
    });
    print(`  agents: ${lines.join("; ")}`);
    found.agents = lines;
  });
  return found;
}
