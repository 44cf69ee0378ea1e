import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { NO_LONGER_HELD } from "@nimbus/core";
import { sweep } from "@nimbus/service";
import { dynamo } from "@nimbus/service/aws-clients";
import { RawAgent, hello, newSession } from "./support/raw-agent.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { attribute, derivation, derivationItem, drv, finished, jobWhere, push } from "./support/graph-events.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// Builds that must not be lost when sessions end, Lambdas die between two writes or agents
// vanish: protocol-level agents over real sockets against the real local stack. The sweeper
// runs only when a test calls `sweep(now)`, on the clock it is given.
const later = (ms: number) => new Date(Date.now() + ms);
const sessionOf = async (stack: TestStack, agent: ScriptedAgent) =>
  (await stack.scan("Sessions")).find((s) => s.sessionId === agent.session.id);

describe("a session ended by a handler that died before handing its tasks back", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("orphans")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("has its build found by the sweeper and finished by another agent", async () => {
    const script = { evaluate: () => [derivation("orphaned"), attribute("orphaned")], buildMs: 60_000 };
    const doomed = ScriptedAgent.create("doomed", { concurrentTasks: 1 }, script);
    agents.push(doomed);
    await doomed.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/orphaned");
    await jobWhere(stack, jobId, (job) => job.counts.building === 1, "the build to start");
    // The agent vanished; the handler that ended its session deleted it, then died before
    // handing the build back.
    doomed.kill();
    await stack.deleteItem("Sessions", { sessionId: doomed.session.id });
    const rescuer = ScriptedAgent.create("rescuer", { concurrentTasks: 1 }, { ...script, buildMs: 10 });
    agents.push(rescuer);
    await rescuer.connect(stack.agentSocketUrl, token);

    await sweep(later(45_000));
    const job = await finished(stack, jobId, 10_000);
    assert.equal(job.status, "succeeded");
    assert.deepEqual(rescuer.builds.map((b) => b.drvPath), [drv("orphaned")]);
    const item = await derivationItem(stack, "orphaned");
    assert.equal(item?.builtBy?.hostname, "rescuer");
    assert.equal(item?.retries, 1, "handed back as a retry: the agent, not the build, failed");
  });
});

describe("a slot reserved for a build that was never leased (a crash between the two writes)", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("slots")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("is given back by the sweeper, and the derivation is built on that agent", async () => {
    const evaluator = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, {
      evaluate: () => [derivation("reserved"), attribute("reserved")],
    });
    // The only agent that can build it; away while the job starts.
    const builder = ScriptedAgent.create("builder", { concurrentTasks: 2 }, {});
    agents.push(evaluator, builder);
    await builder.connect(stack.agentSocketUrl, token);
    builder.close();
    await eventually(async () => ((await sessionOf(stack, builder))?.connectionId ? undefined : true), "the builder to be away");
    await evaluator.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/reserved");
    await jobWhere(stack, jobId, (job) => job.counts.queued === 1, "the derivation to be queued");

    // A handler reserved one of the builder's slots for the build's task (the first write),
    // then died before leasing the derivation (the second).
    const taskId = `b-${createHash("sha256").update(drv("reserved")).digest("hex").slice(0, 16)}-0`;
    await stack.setAttributes("Sessions", { sessionId: builder.session.id }, {
      runningTasks: 1,
      tasks: { [taskId]: { kind: "build", drvPath: drv("reserved"), attempt: 0, startedAt: new Date().toISOString() } },
    });
    // Back, with a slot free: it is offered the derivation, whose task its session "already holds".
    await builder.connect(stack.agentSocketUrl, token);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await derivationItem(stack, "reserved"))?.status, "queued");
    assert.equal(builder.builds.length, 0);

    // 45 s on: longer than a heartbeat (any reservation is leased by then), shorter than two
    // (when a silent connection is closed).
    assert.equal((await sweep(later(45_000))).slotsReleased, 1);
    const job = await finished(stack, jobId, 10_000);
    assert.equal(job.status, "succeeded");
    assert.deepEqual(builder.builds.map((b) => b.drvPath), [drv("reserved")]);
    await eventually(async () => ((await sessionOf(stack, builder))?.runningTasks === 0 ? true : undefined), "the slot to be free");
  });
});

describe("a session ended by the sweeper while its agent says hello", () => {
  let stack: TestStack;
  let token: string;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("attach")).token;
  });
  after(() => stack.cleanup());

  /**
   * Runs `hello` with the session deleted at one step of attaching it, as a sweep ending it
   * at that moment would: the first `command` on the session's item is preceded by its delete.
   */
  async function helloWhileEnded(command: "GetItemCommand" | "UpdateItemCommand") {
    const session = newSession();
    const first = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await first.request(hello({ hostname: "returning" }, session))).type, "welcome");
    first.close();
    await first.waitClosed();
    await eventually(async () => ((await stack.scan("Sessions")).find((s) => s.sessionId === session.id)?.connectionId ? undefined : true), "the session to be detached");

    let struck = false;
    const client = dynamo();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; Key?: { sessionId?: unknown } };
        if (!struck && context.commandName === command && input.TableName?.endsWith("-Sessions") && input.Key?.sessionId === session.id) {
          struck = true;
          await stack.deleteItem("Sessions", { sessionId: session.id });
        }
        return next(args);
      },
      { step: "initialize", name: "endSessionMidAttach" },
    );
    try {
      const again = await RawAgent.connect(stack.agentSocketUrl, token);
      const answer = await again.request(hello({ hostname: "returning" }, session, ["b-gone-task-0"]));
      const following = answer.type === "welcome" ? await again.next(1) : undefined;
      again.close();
      return { struck, answer, following };
    } finally {
      client.middlewareStack.remove("endSessionMidAttach");
    }
  }

  for (const [step, command] of [["between the failed create and the read", "GetItemCommand"], ["between the read and the resume", "UpdateItemCommand"]] as const) {
    it(`${step}: the agent is welcomed on a fresh session and told to drop what it ran`, async () => {
      const { struck, answer, following } = await helloWhileEnded(command);
      assert.ok(struck, "the session was ended at that step");
      assert.equal(answer.type, "welcome", JSON.stringify(answer));
      assert.deepEqual(following, { type: "cancel", taskId: "b-gone-task-0", reason: NO_LONGER_HELD });
      await eventually(async () => {
        const session = (await stack.scan("Sessions")).find((s) => s.agent && (s.agent as { hostname: string }).hostname === "returning");
        return session && session.runningTasks === 0 ? true : undefined;
      }, "a fresh session");
    });
  }
});

describe("an agent whose connection closes", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];
  // Any agent here may evaluate any job: each repository has one derivation named after it.
  const script = (buildMs: number) => ({
    evaluate: (task: { repository: string }) => [derivation(task.repository.split("/")[1]!), attribute(task.repository.split("/")[1]!)],
    buildMs,
  });

  before(async () => {
    // No sweeper: whatever moves here is moved by the disconnect checks alone.
    stack = await startTestStack({ sweepIntervalMs: 0, environment: { NIMBUS_DISCONNECT_GRACE_MS: "1000" } });
    token = (await stack.createToken("disconnects")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("and does not come back has its build moved to another agent once the disconnect grace is over", async () => {
    const doomed = ScriptedAgent.create("doomed", { concurrentTasks: 1 }, script(60_000));
    agents.push(doomed);
    await doomed.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/vanishing");
    await jobWhere(stack, jobId, (job) => job.counts.building === 1, "the build to start");
    const rescuer = ScriptedAgent.create("rescuer", { concurrentTasks: 1 }, script(10));
    agents.push(rescuer);
    await rescuer.connect(stack.agentSocketUrl, token);
    doomed.kill();

    const job = await finished(stack, jobId, 15_000);
    assert.equal(job.status, "succeeded");
    const item = await derivationItem(stack, "vanishing");
    assert.equal(item?.builtBy?.hostname, "rescuer");
    assert.equal(item?.retries, 1);
    assert.equal(await sessionOf(stack, doomed), undefined, "its session ended");
    rescuer.close();
  });

  it("and comes back within the grace keeps its build, which is never restarted", async () => {
    const steady = ScriptedAgent.create("steady", { concurrentTasks: 1 }, script(2_500));
    agents.push(steady);
    await steady.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/blip", "b".repeat(40));
    await jobWhere(stack, jobId, (job) => job.counts.building === 1, "the build to start");
    const bystander = ScriptedAgent.create("bystander", { concurrentTasks: 1 }, script(10));
    agents.push(bystander);
    await bystander.connect(stack.agentSocketUrl, token);
    // The network blinks: the socket closes, the agent (and its build) goes on and reconnects.
    steady.drop();
    await steady.connect(stack.agentSocketUrl, token);

    const job = await finished(stack, jobId, 15_000);
    assert.equal(job.status, "succeeded");
    const item = await derivationItem(stack, "blip");
    assert.equal(item?.builtBy?.hostname, "steady");
    assert.equal(item?.attempt, 0, "never re-queued");
    assert.deepEqual(bystander.builds, []);
    assert.deepEqual(steady.builds.map((b) => b.drvPath), [drv("blip")], "started once");
  });
});

describe("an agent that dies without its connection closing", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({
      sweepIntervalMs: 300,
      environment: { NIMBUS_HEARTBEAT_INTERVAL_MS: "500", NIMBUS_DISCONNECT_GRACE_MS: "1000" },
    });
    token = (await stack.createToken("silent")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("is noticed after two silent heartbeat intervals, and its build moves on after the grace", async () => {
    const script = (buildMs: number) => ({ evaluate: () => [derivation("silent"), attribute("silent")], buildMs, heartbeatMs: 200 });
    const doomed = ScriptedAgent.create("doomed", { concurrentTasks: 1 }, script(60_000));
    agents.push(doomed);
    await doomed.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/silent");
    await jobWhere(stack, jobId, (job) => job.counts.building === 1, "the build to start");
    const rescuer = ScriptedAgent.create("rescuer", { concurrentTasks: 1 }, script(10));
    agents.push(rescuer);
    await rescuer.connect(stack.agentSocketUrl, token);
    // The machine is gone: no more heartbeats, and the gateway never hears the socket close.
    stack.gateway.dropConnection(doomed.connectionId!);
    doomed.kill();

    const job = await finished(stack, jobId, 15_000);
    assert.equal(job.status, "succeeded");
    assert.equal((await derivationItem(stack, "silent"))?.builtBy?.hostname, "rescuer");
  });
});
