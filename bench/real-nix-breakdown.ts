/**
 * Where the `realnix` wall goes (docs/scale.md): read from the agents' debug logs — each task's
 * start, its `timings` line (packages/agent/src/task-timings.ts), its end and the service's
 * `result-ack` — and from the handlers' time as the request counter measured it.
 */
import type { CpuMs } from "./cpu-meter.ts";
import { round, summarize, type Summary } from "./stats.ts";

export interface RealNixBreakdown {
  /** From the webhook to the agent starting the evaluation, ms. */
  webhookToEvaluationMs: number;
  /** The evaluation on the agent, by phase (ms), and its whole time from start to `evaluation-done`. */
  evaluation: { phasesMs: Record<string, number>; totalMs: number };
  /** From `evaluation-done` to the first build reaching an agent, ms (negative: builds start while the evaluation still pushes and sends). */
  evaluationToFirstBuildMs: number;
  /** From the webhook to the first build reaching an agent, ms. */
  webhookToFirstBuildMs: number;
  /** Per build on the agent, mean ms by phase (inputs, build = `nix-store --realise`, outputs read, push), and the whole task. */
  buildPhasesMs: Record<string, number>;
  buildTaskMs: Summary;
  /** From the agent sending a build's result to its `result-ack`, ms. */
  resultToAckMs: Summary;
  /** From the agent sending a build's result (or saying its slot is free) to the next build reaching the same agent, ms. */
  slotFreeToNextBuildMs: Summary;
  /** Share of the time from the first build to the last result that the agents' slots held a build Nix was not done with. */
  nixShareOfSlots: number;
  /** From the last build's result to the job's verdict, ms. */
  lastResultToVerdictMs: number;
  /** How busy the bench's main thread was from the webhook to the verdict (the local stack's handlers, gateway and S3 run on it). */
  mainThreadBusy: number;
  /**
   * CPU per build, ms, from the webhook to the verdict: the bench process's main thread (the
   * handlers with the local gateway, SQS and S3 emulators and the bench's polling), the whole
   * process (with dynalite's thread), the agents, and Nix (the agents' children).
   */
  cpuMsPerBuild?: { mainThread: number; process: number; agents?: number; nix?: number };
  /** The handlers' time per build, ms, by source (handler, or handler: agent message type), most first. */
  handlerMsPerBuild: Record<string, number>;
  /** The handlers' AWS requests per build, by source, most first. */
  requestsPerBuildBySource: Record<string, number>;
}

interface Line {
  at: number;
  level: string;
  text: string;
}

function parse(log: string): Line[] {
  const lines: Line[] = [];
  for (const raw of log.split("\n")) {
    const match = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (\w+) (.*)$/.exec(raw);
    if (match) lines.push({ at: Date.parse(match[1]!), level: match[2]!, text: match[3]! });
  }
  return lines;
}

interface TaskTrace {
  agent: number;
  started?: number;
  finished?: number;
  acknowledged?: number;
  /** When the agent said its slot was free before the result (`build-pushing`). */
  slotFree?: number;
  timings?: Record<string, number>;
}

export function realNixBreakdown(input: {
  logs: readonly string[];
  webhookAt: number;
  verdictAt: number;
  builds: number;
  handlerMs: ReadonlyArray<{ source: string; totalMs: number }>;
  requests: ReadonlyArray<{ source: string; total: number }>;
  mainThreadBusy: number;
  cpuMs?: CpuMs;
}): RealNixBreakdown {
  const tasks = new Map<string, TaskTrace>();
  const trace = (id: string, agent: number) => {
    let t = tasks.get(id);
    if (!t) tasks.set(id, (t = { agent }));
    return t;
  };
  for (const [agent, log] of input.logs.entries()) {
    for (const line of parse(log)) {
      const m = /^task (\S+): (.*)$/.exec(line.text);
      if (!m) continue;
      const [, id, rest] = m as unknown as [string, string, string];
      const t = trace(id, agent);
      if (/^(building|evaluating) /.test(rest)) t.started = line.at;
      else if (/^(succeeded|failed|exceptional) in /.test(rest)) t.finished = line.at;
      else if (rest === "result acknowledged") t.acknowledged = line.at;
      else if (rest.startsWith("slot free while pushing")) t.slotFree = line.at;
      else if (rest.startsWith("timings ")) t.timings = JSON.parse(rest.slice("timings ".length)) as Record<string, number>;
    }
  }
  const evaluation = [...tasks.entries()].find(([id]) => id.startsWith("eval-"))?.[1];
  const builds = [...tasks.entries()].filter(([id]) => id.startsWith("b-")).map(([, t]) => t).filter((t) => t.started !== undefined);
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : round(xs.reduce((a, b) => a + b, 0) / xs.length, 1));

  const phaseMeans: Record<string, number[]> = {};
  for (const b of builds) for (const [k, v] of Object.entries(b.timings ?? {})) (phaseMeans[k] ??= []).push(v);

  // The gap on one agent from a slot coming free to its next build arriving.
  const gaps: number[] = [];
  for (let agent = 0; agent < input.logs.length; agent++) {
    const mine = builds.filter((b) => b.agent === agent).sort((a, b) => a.started! - b.started!);
    for (let i = 1; i < mine.length; i++) {
      const free = mine[i - 1]!.slotFree ?? mine[i - 1]!.finished;
      if (free !== undefined && free <= mine[i]!.started!) gaps.push(mine[i]!.started! - free);
    }
  }
  const firstBuild = Math.min(...builds.map((b) => b.started!));
  const lastResult = Math.max(...builds.map((b) => b.finished ?? 0));
  const nixBusy = builds.reduce((sum, b) => sum + (b.timings ? (b.timings["inputs"] ?? 0) + (b.timings["build"] ?? 0) : 0), 0);
  return {
    webhookToEvaluationMs: evaluation?.started !== undefined ? evaluation.started - input.webhookAt : Number.NaN,
    evaluation: {
      phasesMs: evaluation?.timings ?? {},
      totalMs: evaluation?.started !== undefined && evaluation.finished !== undefined ? evaluation.finished - evaluation.started : Number.NaN,
    },
    evaluationToFirstBuildMs: evaluation?.finished !== undefined ? firstBuild - evaluation.finished : Number.NaN,
    webhookToFirstBuildMs: firstBuild - input.webhookAt,
    buildPhasesMs: Object.fromEntries(Object.entries(phaseMeans).map(([k, v]) => [k, mean(v)])),
    buildTaskMs: summarize(builds.filter((b) => b.finished !== undefined).map((b) => b.finished! - b.started!), 0),
    resultToAckMs: summarize(builds.filter((b) => b.finished !== undefined && b.acknowledged !== undefined).map((b) => b.acknowledged! - b.finished!), 0),
    slotFreeToNextBuildMs: summarize(gaps, 0),
    nixShareOfSlots: round(nixBusy / ((lastResult - firstBuild) * input.logs.length), 2),
    lastResultToVerdictMs: input.verdictAt - lastResult,
    mainThreadBusy: input.mainThreadBusy,
    ...(input.cpuMs ? { cpuMsPerBuild: cpuPerBuild(input.cpuMs, input.builds) } : {}),
    handlerMsPerBuild: Object.fromEntries(
      [...input.handlerMs].sort((a, b) => b.totalMs - a.totalMs).map((h) => [h.source, round(h.totalMs / Math.max(1, input.builds), 1)]),
    ),
    requestsPerBuildBySource: Object.fromEntries(
      [...input.requests].sort((a, b) => b.total - a.total).map((r) => [r.source, round(r.total / Math.max(1, input.builds), 2)]),
    ),
  };
}

function cpuPerBuild(cpu: CpuMs, builds: number): NonNullable<RealNixBreakdown["cpuMsPerBuild"]> {
  const per = (ms: number) => round(ms / Math.max(1, builds), 1);
  return {
    mainThread: per(cpu.mainThread),
    process: per(cpu.process),
    ...(cpu.agents !== undefined ? { agents: per(cpu.agents) } : {}),
    ...(cpu.agentChildren !== undefined ? { nix: per(cpu.agentChildren) } : {}),
  };
}

/** The breakdown as a few lines for the console. */
export function describeBreakdown(b: RealNixBreakdown): string[] {
  const ms = (x: number) => `${Math.round(x)} ms`;
  const phases = (p: Record<string, number>) => Object.entries(p).map(([k, v]) => `${k} ${ms(v)}`).join(", ");
  const handlers = Object.entries(b.handlerMsPerBuild).slice(0, 6).map(([k, v]) => `${k} ${v}`).join(", ");
  const requests = Object.entries(b.requestsPerBuildBySource).slice(0, 8).map(([k, v]) => `${k.replace("socket/default: ", "")} ${v}`).join(", ");
  const cpu = b.cpuMsPerBuild;
  const cpuLine = cpu
    ? `CPU ms per build: service main thread ${cpu.mainThread}, service process ${cpu.process}` +
      (cpu.agents !== undefined ? `, agents ${cpu.agents}` : "") +
      (cpu.nix !== undefined ? `, Nix ${cpu.nix}` : "")
    : undefined;
  return [
    `webhook → evaluation starts ${ms(b.webhookToEvaluationMs)}; evaluation ${ms(b.evaluation.totalMs)} (${phases(b.evaluation.phasesMs)}); → first build ${ms(b.evaluationToFirstBuildMs)} (${ms(b.webhookToFirstBuildMs)} after the webhook)`,
    `per build on the agent: ${phases(b.buildPhasesMs)}; task p50 ${ms(b.buildTaskMs.p50)}; result → ack p50 ${ms(b.resultToAckMs.p50)}; slot free → next build p50 ${ms(b.slotFreeToNextBuildMs.p50)} (p95 ${ms(b.slotFreeToNextBuildMs.p95)})`,
    `slots busy with Nix ${Math.round(b.nixShareOfSlots * 100)} % of the build phase; last result → verdict ${ms(b.lastResultToVerdictMs)}`,
    `main thread ${Math.round(b.mainThreadBusy * 100)} % busy; handler ms per build: ${handlers}`,
    `requests per build: ${requests}`,
    ...(cpuLine ? [cpuLine] : []),
  ];
}
