/**
 * A chaos run through the whole local stack (docs/reliability.md, "What chaos proves"):
 * several jobs over one shared derivation graph, protocol-level agents that are killed,
 * restarted (with or without their session) and cut off, while the local runtime kills
 * handler invocations at random AWS requests and delivers frames and queue messages twice,
 * and the sweeper runs every few hundred milliseconds. Then everyone comes back, and every
 * job must finish by itself with exactly the outcome its graph implies, every derivation
 * settled exactly once, and no task left held.
 *
 * Used by test/chaos.test.ts (300 derivations, in `npm test`) and test/chaos-run.ts
 * (`npm run chaos`, 10,000 derivations). Every wait is bounded and says what it waited for;
 * the jobs' finish is bounded by how long nothing moves, not by the clock.
 */
import { sendSignedPush } from "@nimbus/cli";
import { seededRandom } from "@nimbus/local";
import type { FaultCounts, FaultPlan } from "@nimbus/local";
import { JobView } from "@nimbus/protocol";
import { chaosGraph, type ChaosGraph, type GraphShape } from "./chaos-graph.ts";
import { ScriptedAgent } from "./scripted-agent.ts";
import { startTestStack, type TestStack } from "./stack.ts";

export interface ChaosAgentShape {
  name: string;
  systems: string[];
  systemFeatures: string[];
  concurrentTasks: number;
  buildMs: number;
}

export interface ChaosConfig {
  graph: GraphShape;
  agents: ChaosAgentShape[];
  /** Share of build attempts that end `exceptional` (an agent-side error: retried). */
  exceptionalShare: number;
  /** Injected by the local runtime: handler deaths, duplicate frames and queue messages. */
  faults: FaultPlan;
  /** One agent action (drop, close, kill, come back) this often while the storm lasts. */
  actionEveryMs: number;
  /** The storm ends after this long, or once this share of derivations has settled. */
  stormMs: number;
  stormUntilSettled: number;
  /**
   * After the storm, how long the jobs may go without progress (their statuses and counts
   * unchanged) before they count as hung: a loaded machine is slow, a hung job is still.
   */
  finishWithinMs: number;
  sweepIntervalMs: number;
  /** Timing knobs for the handlers (docs/reliability.md). */
  environment: Record<string, string>;
  evaluationBatchSize: number;
  heartbeatMs: number;
  resendMs: number;
  seed: number;
  /** How often the jobs' full views are read through the API while the run goes on (default 2 s). */
  viewEveryMs?: number;
  /** Progress lines (none by default). */
  progress?: (line: string) => void;
  progressEveryMs?: number;
}

export interface ChaosReport {
  derivations: number;
  jobs: number;
  durationMs: number;
  /** Faults injected, by kind. */
  faults: FaultCounts & {
    agentCrashes: number;
    sessionLosses: number;
    connectionDrops: number;
    gatewayCloses: number;
    exceptionalResults: number;
  };
  /** When the storm ended, from the start; then how long the jobs took to finish on their own (undefined: they did not). */
  stormEndedAfterMs: number;
  settledAfterStormMs?: number;
  /** Derivations left leased to no session that holds them: builds nothing would ever finish (must be 0). */
  lostBuilds: number;
  buildTasks: number;
  retries: number;
  refusedDeliveries: number;
  gatewayErrors: number;
  /** What went wrong; empty when the run is clean. */
  problems: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runChaos(config: ChaosConfig): Promise<ChaosReport> {
  const started = Date.now();
  const graph = chaosGraph(config.graph);
  const random = seededRandom(config.seed);
  const logs: string[] = [];
  const stack = await startTestStack({
    log: (line) => {
      if (logs.length < 5000) logs.push(line);
    },
    sweepIntervalMs: config.sweepIntervalMs,
    environment: config.environment,
    faults: config.faults,
  });
  const counts = { agentCrashes: 0, sessionLosses: 0, connectionDrops: 0, gatewayCloses: 0, exceptionalResults: 0 };
  const agents = config.agents.map((shape) => chaosAgent(shape, graph, config, random, counts));
  try {
    const token = await retried("a join token", () => stack.createToken("chaos"), 30_000);
    await Promise.all(agents.map((agent) => retried(`${agent.name}'s first welcome`, () => agent.connect(stack.agentSocketUrl, token.token, 5_000), 60_000)));
    const jobIds: string[] = [];
    for (const job of graph.jobs) {
      // A push whose handler died is delivered again, with the same delivery id, as GitHub does.
      const deliveryId = `chaos-${config.seed}-${job.repository}`;
      const accepted = await retried(`the push of ${job.repository}`, async () => {
        const answer = await within(30_000, `the webhook for ${job.repository}`, sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: job.repository, commit: job.commit }, deliveryId));
        if (answer.status !== 200 && answer.status !== 201) throw new Error(`webhook answered ${answer.status}`);
        return answer.body as { jobId: string };
      }, 60_000);
      jobIds.push(accepted.jobId);
    }

    // Whether jobs still run is read from their items (cheap); their views, which read every
    // attribute and count every status, through the API only every `viewEveryMs` and at the end:
    // polling them every second would take much of the stack's time on a big graph.
    const statuses = new Map<string, string>();
    const views = new Map<string, JobView>();
    let viewsAt = 0;
    const viewOf = async (id: string) => {
      const { status, body } = await stack.api("GET", `/api/jobs/${id}`);
      if (status !== 200) throw new Error(`GET /api/jobs/${id} answered ${status}`);
      return JobView.parse(body);
    };
    const refreshViews = async () => {
      for (const id of jobIds) {
        const view = await viewOf(id).catch(() => undefined);
        if (view) views.set(id, view);
      }
      viewsAt = Date.now();
    };
    const poll = async () => {
      for (const id of jobIds) {
        const item = await stack.getItem("Jobs", { jobId: id }).catch(() => undefined);
        if (item) statuses.set(id, String(item.status));
      }
      if (Date.now() - viewsAt >= (config.viewEveryMs ?? 2_000)) await refreshViews();
    };
    const running = () => jobIds.some((id) => !statuses.has(id) || ["evaluating", "building"].includes(statuses.get(id)!));
    const settledShare = () => {
      let settled = 0;
      for (const view of views.values()) {
        for (const [status, n] of Object.entries(view.counts)) if (!["waiting", "queued", "building"].includes(status)) settled += n;
      }
      const total = graph.jobs.reduce((n, job) => n + job.derivations.length, 0);
      return settled / total;
    };
    let lastProgress = Date.now();
    const report = async (phase: string) => {
      if (!config.progress || Date.now() - lastProgress < (config.progressEveryMs ?? 10_000)) return;
      lastProgress = Date.now();
      const jobs = jobIds.map((id) => `${views.get(id)?.status ?? "?"} ${JSON.stringify(views.get(id)?.counts ?? {})}`).join("; ");
      const sessions = await stack.scan("Sessions");
      const slots = sessions.reduce((n, s) => n + Number(s.runningTasks), 0);
      const connected = agents.filter((a) => a.connected).length;
      config.progress(
        `… ${Math.round((Date.now() - started) / 1000)} s ${phase}: ${jobs}; agents ${connected}/${agents.length} connected, ${slots} slots held in ${sessions.length} sessions; ` +
          `faults ${JSON.stringify(stack.faultCounts())} ${JSON.stringify(counts)}`,
      );
    };

    // The storm: agents go down and come back, connections are cut, while the runtime injects its faults.
    const down = new Set<ScriptedAgent>();
    const stormEnds = Date.now() + config.stormMs;
    let lastPoll = 0;
    while (Date.now() < stormEnds) {
      if (Date.now() - lastPoll > 1_000) {
        await poll();
        lastPoll = Date.now();
        if (!running() || settledShare() >= config.stormUntilSettled) break;
        await report("storm");
      }
      const agent = agents[Math.floor(random() * agents.length)]!;
      const roll = random();
      if (!down.has(agent)) {
        const live = agent.connected && agent.connectionId !== undefined && stack.gateway.connectionIds().includes(agent.connectionId);
        if (roll < 0.25 && live) {
          stack.gateway.dropConnection(agent.connectionId!); // no $disconnect, as API Gateway may do
          counts.connectionDrops++;
        } else if (roll < 0.45 && live) {
          stack.gateway.closeConnection(agent.connectionId!, 1001);
          counts.gatewayCloses++;
        } else if (roll < 0.6) {
          agent.kill();
          down.add(agent);
          counts.agentCrashes++;
        } else if (roll < 0.68) {
          agent.kill({ newSession: true });
          down.add(agent);
          counts.sessionLosses++;
        }
      } else if (roll < 0.5) {
        down.delete(agent);
      }
      reconnect(agents.filter((a) => !down.has(a)), stack, token.token);
      await sleep(config.actionEveryMs);
    }

    // Calm: everyone comes back; the jobs must finish by themselves.
    down.clear();
    const stormEnded = Date.now();
    const progressOf = () => JSON.stringify(jobIds.map((id) => [statuses.get(id), views.get(id)?.counts]));
    let lastMove = Date.now();
    let seen = progressOf();
    while (running() && Date.now() - lastMove < config.finishWithinMs) {
      reconnect(agents, stack, token.token);
      await sleep(500);
      await poll();
      await report("calm");
      if (progressOf() !== seen) {
        seen = progressOf();
        lastMove = Date.now();
      }
    }
    const settledAfterStormMs = running() ? undefined : Date.now() - stormEnded;
    // What the checks read is what the API says now (a call whose handler died is made again).
    for (const id of jobIds) views.set(id, await retried(`the view of job ${id}`, () => viewOf(id), 120_000));
    const problems: string[] = [];
    if (running()) {
      problems.push(...(await hungJobs(stack, jobIds, views, config.finishWithinMs)));
    } else {
      problems.push(...checkOutcomes(graph, jobIds, views));
      if (problems.length) problems.push(...(await explainCounts(stack, graph, jobIds)));
      problems.push(...(await checkDerivations(stack, graph)));
      problems.push(...checkSettledOnce(agents, new Map((await stack.scan("Derivations")).map((d) => [String(d.drvPath), d]))));
      // A result whose handler died after settling and before freeing the slot is freed when the
      // agent sends it again: unacknowledged for resendMs, looked at every resendMs / 2.
      problems.push(...(await checkNoTaskHeld(stack, agents, 2 * config.resendMs + 5_000, () => reconnect(agents, stack, token.token))));
    }
    if (problems.length) problems.push(`first log lines:\n${logs.slice(0, 12).join("\n")}`);
    const derivationItems = await stack.scan("Derivations");
    const lostBuilds = (await confirmedLost(stack, lostLeases(derivationItems, await stack.scan("Sessions")))).length;
    return {
      derivations: graph.derivations.length,
      jobs: graph.jobs.length,
      durationMs: Date.now() - started,
      stormEndedAfterMs: stormEnded - started,
      ...(settledAfterStormMs === undefined ? {} : { settledAfterStormMs }),
      lostBuilds,
      faults: { ...stack.faultCounts(), ...counts },
      buildTasks: agents.reduce((n, a) => n + a.builds.length, 0),
      retries: derivationItems.reduce((n, d) => n + Number(d.attempt ?? 0), 0),
      refusedDeliveries: agents.reduce((n, a) => n + a.refused, 0),
      gatewayErrors: agents.reduce((n, a) => n + a.gatewayErrors, 0),
      problems,
    };
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nlast log lines:\n${logs.slice(-20).join("\n")}`, { cause: error });
  } finally {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  }
}

function chaosAgent(
  shape: ChaosAgentShape,
  graph: ChaosGraph,
  config: ChaosConfig,
  random: () => number,
  counts: { exceptionalResults: number },
): ScriptedAgent {
  const jobByCommit = new Map(graph.jobs.map((job) => [job.commit, job]));
  return ScriptedAgent.create(
    shape.name,
    { systems: shape.systems, systemFeatures: shape.systemFeatures, concurrentTasks: shape.concurrentTasks },
    {
      evaluate: (task) => jobByCommit.get(task.commit)?.events ?? [],
      build: (task) => {
        if (graph.failing.has(task.drvPath)) return { status: "failed", exitCode: 1, log: ["chaos: this builder fails"] };
        if (random() < config.exceptionalShare) {
          counts.exceptionalResults++;
          return { status: "exceptional" };
        }
        return { status: "succeeded" };
      },
      batchSize: config.evaluationBatchSize,
      buildMs: shape.buildMs,
      heartbeatMs: config.heartbeatMs,
      resendMs: config.resendMs,
    },
  );
}

/** Agents that are up reconnect by themselves (the real agent's back-off loop), without holding up the storm. */
const connecting = new WeakSet<ScriptedAgent>();
function reconnect(agents: ScriptedAgent[], stack: TestStack, token: string): void {
  for (const agent of agents) {
    if (agent.connected || connecting.has(agent)) continue;
    connecting.add(agent);
    agent
      .connect(stack.agentSocketUrl, token, 20_000)
      .catch(() => {})
      .finally(() => connecting.delete(agent));
  }
}

/** `promise`, or an error naming what was waited for after `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls `attempt` until it succeeds, at most `withinMs`; the error names what was waited for. */
async function retried<T>(what: string, attempt: () => Promise<T>, withinMs: number): Promise<T> {
  const deadline = Date.now() + withinMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await attempt();
    } catch (error) {
      last = error;
      await sleep(200);
    }
  }
  throw new Error(`chaos: gave up waiting for ${what} after ${withinMs} ms: ${String(last)}`);
}

async function hungJobs(stack: TestStack, jobIds: string[], views: Map<string, JobView>, withinMs: number): Promise<string[]> {
  const problems = jobIds
    .filter((id) => !views.has(id) || ["evaluating", "building"].includes(views.get(id)!.status))
    .map((id) => `job ${id} hung: still ${views.get(id)?.status ?? "unknown"}, nothing moved for ${withinMs} ms after the storm, counts ${JSON.stringify(views.get(id)?.counts ?? {})}`);
  const derivations = await stack.scan("Derivations");
  const sessions = await stack.scan("Sessions");
  const statusOf = new Map(derivations.map((d) => [String(d.drvPath), String(d.status)]));
  const lost = await confirmedLost(stack, lostLeases(derivations, sessions));
  // Lost builds first: they are what no amount of waiting finishes.
  const lostPaths = new Set(lost.map((d) => String(d.drvPath)));
  const stuck = [...lost, ...derivations.filter((d) => ["waiting", "queued", "building"].includes(String(d.status)) && !lostPaths.has(String(d.drvPath)))];
  const described = await Promise.all(
    stuck.slice(0, 6).map(async (d) => {
      const item = (await stack.getItem("Derivations", { drvPath: d.drvPath }))!;
      const sets = (value: unknown) => [...((value as Set<string> | undefined) ?? [])].map((input) => `${input.slice(44)} (${statusOf.get(input) ?? "?"})`);
      return { ...item, inputDrvs: sets(item.inputDrvs), pendingInputs: sets(item.pendingInputs), ...(lostPaths.has(String(d.drvPath)) ? { lost: "leased to no session that holds the task" } : {}) };
    }),
  );
  problems.push(`${stuck.length} derivations unsettled, ${lost.length} of them lost builds (leased to a session that is gone or does not hold the task); the first: ${JSON.stringify(described, null, 1)}`);
  const jobs = (await stack.scan("Jobs")).filter((j) => jobIds.includes(String(j.jobId)));
  problems.push(`jobs: ${JSON.stringify(jobs.map((j) => ({ id: j.jobId, status: j.status, evaluation: j.evaluation })))}`);
  problems.push(`sessions: ${JSON.stringify(sessions.map((s) => ({ id: s.sessionId, connection: s.connectionId, running: s.runningTasks, tasks: s.tasks })))}`);
  return problems;
}

/** Derivations `building` under a lease whose session is gone or does not hold the task: nothing would finish them. */
function lostLeases(derivations: Record<string, unknown>[], sessions: Record<string, unknown>[]): Record<string, unknown>[] {
  const tasksOf = new Map(sessions.map((s) => [String(s.sessionId), (s.tasks as object | undefined) ?? {}]));
  return derivations.filter((d) => {
    const lease = d.lease as { taskId: string; sessionId: string } | undefined;
    if (d.status !== "building" || !lease) return false;
    const tasks = tasksOf.get(lease.sessionId);
    return !tasks || !Object.hasOwn(tasks, lease.taskId);
  });
}

/**
 * The candidates that stay lost: read twice, 2 s apart, each time the session before the
 * derivation (a session read first cannot miss a task whose derivation is still leased after
 * it). A build that settled, or was handed back, between two scans is not counted.
 */
async function confirmedLost(stack: TestStack, candidates: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  let lost = candidates;
  for (let pass = 0; pass < 2 && lost.length > 0; pass++) {
    await sleep(2_000);
    const still: Record<string, unknown>[] = [];
    for (const candidate of lost) {
      const { taskId, sessionId } = candidate.lease as { taskId: string; sessionId: string };
      const session = await stack.getItem("Sessions", { sessionId });
      const drv = await stack.getItem("Derivations", { drvPath: candidate.drvPath });
      const lease = drv?.lease as { taskId: string } | undefined;
      const held = session !== undefined && Object.hasOwn((session.tasks as object | undefined) ?? {}, taskId);
      if (drv?.status === "building" && lease?.taskId === taskId && !held) still.push(drv);
    }
    lost = still;
  }
  return lost;
}

function checkOutcomes(graph: ChaosGraph, jobIds: string[], views: Map<string, JobView>): string[] {
  const problems: string[] = [];
  graph.jobs.forEach((job, i) => {
    const view = views.get(jobIds[i]!)!;
    if (view.status !== job.expected.status) problems.push(`job ${view.id} (${job.repository}) ended ${view.status}, expected ${job.expected.status}`);
    if (JSON.stringify(sorted(view.counts)) !== JSON.stringify(sorted(job.expected.counts))) {
      problems.push(`job ${view.id} (${job.repository}) counts ${JSON.stringify(sorted(view.counts))}, expected ${JSON.stringify(sorted(job.expected.counts))}`);
    }
  });
  return problems;
}

/** For jobs whose counts are off: which of their derivations they have no row for, and what their evaluation says. */
async function explainCounts(stack: TestStack, graph: ChaosGraph, jobIds: string[]): Promise<string[]> {
  const rows = await stack.scan("JobDerivations");
  const jobs = await stack.scan("Jobs");
  const attributes = await stack.scan("JobAttributes");
  const items = new Map((await stack.scan("Derivations")).map((d) => [String(d.drvPath), d]));
  return graph.jobs.flatMap((job, i) => {
    const id = jobIds[i]!;
    const have = new Set(rows.filter((r) => r.jobId === id).map((r) => String(r.drvPath)));
    const missing = job.derivations.filter((d) => !have.has(d));
    if (missing.length === 0) return [];
    const record = jobs.find((j) => j.jobId === id);
    const errors = attributes.filter((a) => a.jobId === id && a.error).map((a) => a.error);
    return [
      `job ${id}: no row for ${missing.length} of its derivations, e.g. ${JSON.stringify(missing.slice(0, 3).map((d) => ({ drvPath: d, item: items.get(d) })))}; ` +
        `evaluation ${JSON.stringify(record?.evaluation)}; attribute errors ${JSON.stringify(errors.slice(0, 3))}`,
    ];
  });
}

const sorted = (counts: Partial<Record<string, number>>) => Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));

async function checkDerivations(stack: TestStack, graph: ChaosGraph): Promise<string[]> {
  const items = new Map((await stack.scan("Derivations")).map((d) => [String(d.drvPath), d]));
  const problems: string[] = [];
  for (const [drvPath, status] of graph.expected) {
    const item = items.get(drvPath);
    if (!item) problems.push(`${drvPath} was never registered`);
    else if (item.status !== status) problems.push(`${drvPath} ended ${String(item.status)}, expected ${status}`);
    else if ((status === "succeeded" || status === "failed") && !item.builtBy) problems.push(`${drvPath} is ${status} with no builder recorded`);
  }
  return problems.slice(0, 20);
}

/**
 * Counted across agents: a derivation whose results for two different tasks (attempts) were
 * acknowledged may have been settled twice. (One task's result acknowledged twice is one settle:
 * only its lease holder can apply it, once, and a repeat is acknowledged so the agent stops
 * sending it.) An acknowledgement is not proof of a settle — a result that lost its lease to a
 * hand-back is acknowledged too, and changes nothing — so the derivation's own moves decide:
 * settled twice is two moves to succeeded or failed.
 */
function checkSettledOnce(agents: ScriptedAgent[], derivations: ReadonlyMap<string, Record<string, unknown>>): string[] {
  const by = new Map<string, Map<string, string>>();
  for (const agent of agents) {
    agent.settled.forEach((drv, i) => {
      const tasks = by.get(drv) ?? new Map<string, string>();
      tasks.set(agent.settledTasks[i]!, agent.name);
      by.set(drv, tasks);
    });
  }
  const settleMoves = (drv: string) =>
    ((derivations.get(drv)?.history as { status: string }[] | undefined) ?? []).filter((m) => m.status === "succeeded" || m.status === "failed").length;
  return [...by]
    .filter(([drv, tasks]) => tasks.size > 1 && settleMoves(drv) > 1)
    .map(
      ([drv, tasks]) =>
        `${drv} was settled ${settleMoves(drv)} times: ${[...tasks].map(([task, agent]) => `task ${task} by ${agent}`).join(", ")}; moves ${JSON.stringify(derivations.get(drv)?.history)}`,
    );
}

/** Once every job is over, no session may still hold a task after `withinMs` (its slot would be lost for good). */
async function checkNoTaskHeld(stack: TestStack, agents: ScriptedAgent[], withinMs: number, keepConnected: () => void): Promise<string[]> {
  const deadline = Date.now() + withinMs;
  let held: Record<string, unknown>[] = [];
  while (Date.now() < deadline) {
    keepConnected();
    held = (await stack.scan("Sessions")).filter((s) => Number(s.runningTasks) !== 0 || Object.keys((s.tasks as object) ?? {}).length > 0);
    if (held.length === 0) return [];
    await sleep(500);
  }
  const bySession = new Map(agents.map((a) => [a.session.id, a]));
  return Promise.all(
    held.map(async (s) => {
      const agent = bySession.get(String(s.sessionId));
      // What each held task's target says now, and whether the agent knows of the task.
      const targets = await Promise.all(
        Object.entries((s.tasks as Record<string, { kind: string; drvPath?: string; jobId?: string }>) ?? {}).map(async ([taskId, record]) => {
          const target = record.drvPath ? await stack.getItem("Derivations", { drvPath: record.drvPath }) : record.jobId ? await stack.getItem("Jobs", { jobId: record.jobId }) : undefined;
          const { status, attempt, lease, builtBy, evaluation } = (target ?? {}) as Record<string, unknown>;
          return { taskId, target: { status, attempt, lease, builtBy, evaluation }, agentHasIt: agent?.holds(taskId) ?? false };
        }),
      );
      const who = agent ? `${agent.name}, ${agent.connected ? "connected" : "not connected"}` : "an earlier session";
      return `session ${String(s.sessionId)} (${who}) still holds ${String(s.runningTasks)} slots: ${JSON.stringify(s.tasks)}; targets now: ${JSON.stringify(targets)}`;
    }),
  );
}
