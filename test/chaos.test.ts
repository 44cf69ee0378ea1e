import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { JobView, type EvaluationEvent } from "@nimbus/protocol";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { sendSignedPush as sendPush } from "@nimbus/cli";

// A bounded chaos run: 300 derivations, 4 protocol-level agents killed and restarted at
// random (some keep their session, some lose it), connections dropped by the gateway with and
// without $disconnect, the sweeper running. Every derivation must settle exactly once.
const COUNT = 300;
const drv = (i: number) => `/nix/store/${String(i).padStart(32, "c")}-chaos-${i}.drv`;

/** Layers of 30; each derivation takes up to two inputs from the layer before. Seeded, so runs compare. */
function graph(): EvaluationEvent[] {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const events: EvaluationEvent[] = [];
  for (let i = 0; i < COUNT; i++) {
    const layer = Math.floor(i / 30);
    const inputs = layer === 0 ? [] : [...new Set([0, 1].map(() => (layer - 1) * 30 + Math.floor(random() * 30)))];
    events.push({ kind: "derivation", drvPath: drv(i), system: "x86_64-linux", requiredFeatures: [], inputDrvs: inputs.map(drv), outputs: { out: `/nix/store/chaos-${i}` } });
  }
  for (let i = COUNT - 30; i < COUNT; i++) {
    events.push({ kind: "attribute", path: [`top${i}`], drvPath: drv(i), attributeType: "regular", needsBuild: true });
  }
  return events;
}

/**
 * Waits for `done`, failing only when `progress` (what has happened so far) stays the same for
 * `stallMs`: a loaded machine is slow, a hung job is still. No wall-clock deadline otherwise.
 */
async function withoutStalling<T>(done: () => Promise<T | undefined>, progress: () => Promise<string>, what: string, stallMs: number): Promise<T> {
  let last = "";
  let since = Date.now();
  for (;;) {
    const value = await done();
    if (value !== undefined) return value;
    const now = await progress();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since > stallMs) {
      throw new Error(`${what}: nothing moved for ${stallMs / 1000} s (${now})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Longer than anything in this configuration waits on its own (the 20 s disconnect grace, then a sweep). */
const STALL_MS = 60_000;

describe("chaos: agents killed and restarted, connections dropped, the sweeper running", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];
  const events = graph();
  const logs: string[] = [];

  before(async () => {
    stack = await startTestStack({
      log: (line) => logs.push(line),
      sweepIntervalMs: 250,
      environment: {
        NIMBUS_HEARTBEAT_INTERVAL_MS: "400",
        NIMBUS_SESSION_GRACE_MS: "1500",
        NIMBUS_REQUEUE_AFTER_MS: "3000",
        NIMBUS_RETRY_BASE_MS: "100",
        NIMBUS_RETRY_MAX_MS: "500",
        NIMBUS_MAX_ATTEMPTS: "100",
      },
    });
    token = (await stack.createToken("chaos")).token;
    for (let i = 0; i < 4; i++) {
      const agent = ScriptedAgent.create(`chaos-${i}`, { concurrentTasks: 3 }, {
        evaluate: () => events,
        batchSize: 50,
        buildMs: 30 + i * 15,
        heartbeatMs: 200,
      });
      await agent.connect(stack.agentSocketUrl, token);
      agents.push(agent);
    }
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("settles every derivation exactly once, loses none and finishes the job", async () => {
    const { body } = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/chaos", commit: "c".repeat(40) });
    // Heartbeats are 400 ms apart here: on a loaded machine one can be late past two intervals,
    // and the sweeper closes that connection. Agents connect again, as the real one does.
    const reconnect = async (skip: ReadonlySet<ScriptedAgent> = new Set()) => {
      for (const a of agents) if (!skip.has(a) && !a.connected) await a.connect(stack.agentSocketUrl, token).catch(() => {});
    };
    const view = async () => JobView.parse((await stack.api("GET", `/api/jobs/${body.jobId}`)).body);
    const progress = async () => {
      const job = await view();
      return JSON.stringify([job.status, job.evaluation, job.counts]);
    };
    await withoutStalling(
      async () => {
        await reconnect();
        return agents.some((a) => a.builds.length > 0) ? true : undefined;
      },
      progress,
      "the first build",
      STALL_MS,
    );

    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const down = new Set<ScriptedAgent>();
    const actions = { drops: 0, gatewayCloses: 0, crashes: 0, sessionLosses: 0 };
    let job: JobView | undefined;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      job = await view();
      if (job.status !== "evaluating" && job.status !== "building") break;
      const agent = agents[Math.floor(random() * agents.length)]!;
      const roll = random();
      if (!down.has(agent)) {
        // (The gateway may have closed the connection already: the service closes a session's older one.)
        const live = agent.connected && stack.gateway.connectionIds().includes(agent.connectionId!);
        if (roll < 0.25 && live) {
          stack.gateway.dropConnection(agent.connectionId!); // no $disconnect, as API Gateway may do
          actions.drops++;
        } else if (roll < 0.45 && live) {
          stack.gateway.closeConnection(agent.connectionId!, 1001);
          actions.gatewayCloses++;
        } else if (roll < 0.6) {
          agent.kill();
          down.add(agent);
          actions.crashes++;
        } else if (roll < 0.7) {
          agent.kill({ newSession: true });
          down.add(agent);
          actions.sessionLosses++;
        }
      } else if (roll < 0.5) {
        down.delete(agent);
      }
      // Agents reconnect by themselves (the real agent's back-off loop), unless they are down.
      await reconnect(down);
      await new Promise((r) => setTimeout(r, 150));
    }
    // The storm is over: everyone comes back, and the job must finish by itself.
    down.clear();
    job = await withoutStalling(
      async () => {
        await reconnect();
        const current = await view();
        return current.status === "evaluating" || current.status === "building" ? undefined : current;
      },
      progress,
      "the job to finish after the chaos",
      STALL_MS,
    ).catch(async (error) => {
      const stuck = (await stack.scan("Derivations")).filter((d) => d.status !== "succeeded");
      const sessions = (await stack.scan("Sessions")).map((x) => ({ id: x.sessionId, conn: x.connectionId, running: x.runningTasks, tasks: x.tasks, lastSeen: x.lastSeen }));
      throw new Error(`${error.message}\nlogs: ${logs.slice(0, 8).join("\n")}\nstuck: ${JSON.stringify(stuck.slice(0, 5), null, 1)}\n${stuck.length} stuck\nsessions: ${JSON.stringify(sessions, null, 1)}\nnow ${new Date().toISOString()}`);
    });

    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
    assert.deepEqual(job.counts, { succeeded: COUNT });
    const derivations = await stack.scan("Derivations");
    assert.equal(derivations.filter((d) => d.status === "succeeded" && d.builtBy).length, COUNT, "none lost: every derivation built");
    // A result is acknowledged only when it settled its derivation; duplicates get unknown-task.
    // (An agent killed before the ack arrived never hears it, so some are missing here.)
    const acknowledged = agents.flatMap((a) => a.settled);
    assert.equal(new Set(acknowledged).size, acknowledged.length, "no derivation was settled twice");
    const requeues = derivations.reduce((n, d) => n + Number(d.attempt), 0);
    const dispatched = agents.reduce((n, a) => n + a.builds.length, 0);
    const absorbed = agents.reduce((n, a) => n + a.refused, 0);
    console.log(
      `chaos: ${JSON.stringify(actions)}; ${dispatched} build tasks for ${COUNT} derivations, ${requeues} re-queues, ${absorbed} duplicate or stale deliveries absorbed`,
    );
    assert.ok(actions.crashes + actions.sessionLosses + actions.drops + actions.gatewayCloses > 10, "there was chaos");
  });
});
