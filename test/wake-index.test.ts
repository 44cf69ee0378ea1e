/**
 * The index of sessions by capability (Sessions.byCapability, core capability-class.ts) through
 * the real local stack: a wake reads only the sessions of the classes that can take the work,
 * a full agent is not among the idle ones and is again once a slot frees, and an agent that
 * drains, leaves or is away is not woken.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import { capabilityClassOf } from "@nimbus/core";
import { JobView, type AgentInfo, type EvaluationEvent } from "@nimbus/protocol";
import { sweep } from "@nimbus/service";
import { dynamo } from "@nimbus/service/aws-clients";
import { quietSessions } from "../packages/service/src/flow/sessions.ts";
import { hasSessions, idleSessionsOf, sessionsOf, systemsWithSessions } from "../packages/service/src/storage/sessions.ts";
import { hello, newSession, RawAgent } from "./support/raw-agent.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const drv = (name: string, system: string, requiredFeatures: string[] = []): EvaluationEvent[] => {
  const drvPath = `/nix/store/${name.padEnd(32, "w").slice(0, 32)}-${name}.drv`;
  return [
    { kind: "derivation", drvPath, system, requiredFeatures, inputDrvs: [], outputs: { out: drvPath.replace(/\.drv$/, "") } },
    { kind: "attribute", path: [name], drvPath, attributeType: "regular", needsBuild: true },
  ];
};

const ARM = drv("armone", "aarch64-linux");
const ARM_DRV = (ARM[0] as { drvPath: string }).drvPath;

const ids = (sessions: { sessionId: string }[]) => sessions.map((s) => s.sessionId).sort();
const classOf = (info: Pick<AgentInfo, "systems" | "systemFeatures" | "mandatoryFeatures">) => capabilityClassOf({ ...info });

describe("waking idle agents through the capability index", () => {
  let stack: TestStack;
  let token: string;
  let arm: ScriptedAgent;
  let x86: ScriptedAgent;
  let kvm: ScriptedAgent;
  const events: EvaluationEvent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("wake-index")).token;
    const script = { evaluate: () => events, buildMs: 1500 };
    arm = ScriptedAgent.create("arm", { systems: ["aarch64-linux"], systemFeatures: [], concurrentTasks: 1 }, script);
    x86 = ScriptedAgent.create("x86", { systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 1 }, script);
    kvm = ScriptedAgent.create("kvm", { systems: ["x86_64-linux"], systemFeatures: ["kvm"], concurrentTasks: 1 }, script);
    for (const agent of [arm, x86, kvm]) await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    for (const agent of [arm, x86, kvm]) agent?.close();
    await stack?.cleanup();
  });

  it("files each idle session under its class: a class's idle sessions are its agents, no other", async () => {
    assert.deepEqual(ids(await idleSessionsOf([classOf(arm.info)], 10)), [arm.session.id]);
    assert.deepEqual(ids(await idleSessionsOf([classOf(x86.info)], 10)), [x86.session.id]);
    assert.deepEqual(ids(await idleSessionsOf([classOf(kvm.info)], 10)), [kvm.session.id]);
  });

  it("wakes the idle agent that can build a queued derivation, not the others; it is out of the idle ones while full and back when its slot frees", async () => {
    events.splice(0, events.length, ...ARM);
    const pushed = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/wake", commit: "a".repeat(40) });
    const jobId = pushed.body.jobId as string;
    // Whoever evaluates, only the aarch64 agent is woken for the build.
    await eventually(async () => (arm.running === 1 && arm.builds.some((b) => b.drvPath === ARM_DRV) ? true : undefined), "the aarch64 agent to be building");
    assert.deepEqual(
      [...x86.builds, ...kvm.builds].map((b) => b.drvPath),
      [],
      "no x86_64 agent was given the aarch64 build",
    );
    // The evaluation was asked for the systems of the agents there are (their classes, from the index).
    const evaluation = [arm, x86, kvm].flatMap((a) => a.evaluations)[0];
    assert.deepEqual(evaluation?.systems, ["aarch64-linux", "x86_64-linux"]);

    // Full (1 of 1): not among the idle, still among its class's sessions (placement counts it).
    await eventually(async () => (ids(await idleSessionsOf([classOf(arm.info)], 10)).length === 0 ? true : undefined), "the full agent to leave the idle ones");
    assert.deepEqual(ids(await sessionsOf([classOf(arm.info)])), [arm.session.id]);
    const stored = await stack.getItem("Sessions", { sessionId: arm.session.id });
    assert.equal(stored?.idleSlots, 0);

    await eventually(async () => (JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body).status === "succeeded" ? true : undefined), "the job to succeed");
    await eventually(async () => (ids(await idleSessionsOf([classOf(arm.info)], 10)).includes(arm.session.id) ? true : undefined), "the agent to be idle again");
    assert.equal((await stack.getItem("Sessions", { sessionId: arm.session.id }))?.idleSlots, 1);
  });

  it("moves a session to its new class when its agent's info changes", async () => {
    const before = classOf(x86.info);
    x86.changeInfo({ systemFeatures: ["big-parallel"] });
    const afterClass = classOf(x86.info);
    assert.notEqual(afterClass.classId, before.classId);
    await eventually(async () => (ids(await idleSessionsOf([afterClass], 10)).includes(x86.session.id) ? true : undefined), "the session under its new class");
    assert.deepEqual(ids(await sessionsOf([before])), []);
  });

  it("takes out a draining agent, keeps an away one out of the idle ones, and forgets a session that ended", async () => {
    const info = { systems: ["riscv64-linux"], systemFeatures: [], mandatoryFeatures: [], concurrentTasks: 2 };
    const klass = classOf(info);
    const connect = async (session = newSession()) => {
      const raw = await RawAgent.connect(stack.agentSocketUrl, token);
      const welcome = await raw.request(hello({ ...info, hostname: "raw" }, session));
      assert.equal(welcome.type, "welcome");
      return { raw, session };
    };

    const draining = await connect();
    const leaving = await connect();
    const away = await connect();
    assert.deepEqual(ids(await idleSessionsOf([klass], 10)), ids([draining.session, leaving.session, away.session].map((s) => ({ sessionId: s.id }))));

    draining.raw.send({ type: "pause" });
    leaving.raw.send({ type: "goodbye" });
    away.raw.socket.terminate();
    // One read that finds the away session alone: a GSI read may miss an item whose index key a write is moving (dynalite
    // deletes the old entry before it puts the new one; DynamoDB's indexes are eventually consistent), so one read after
    // another that saw the count fall to one could find none. A session that left the index for good fails the wait.
    let seen: string[] = [];
    await eventually(
      async () => ((seen = ids(await sessionsOf([klass]))).length === 1 && seen[0] === away.session.id ? true : undefined),
      () => `the draining and the leaving session to leave the index, the away one (still counted for placement) to stay: ${JSON.stringify(seen)}`,
    );
    await eventually(async () => (ids(await idleSessionsOf([klass], 10)).length === 0 ? true : undefined), "the away agent to be out of the idle ones");

    // Back on a new connection, same session: idle again, with its slots counted afresh.
    const back = await connect(away.session);
    assert.deepEqual(ids(await idleSessionsOf([klass], 10)), [away.session.id]);
    assert.equal((await stack.getItem("Sessions", { sessionId: away.session.id }))?.idleSlots, 2);
    for (const agent of [draining.raw, leaving.raw, back.raw]) agent.close();
  });

  it("finds an agent's session for its class however often its free slots change (an evaluation's systems, the sweeper's forgetting, a build's placement)", async () => {
    // Each change of free slots moves the session's byCapability entry (idleSlots is its sort key): a read of that
    // index while one moves can miss it. Whether a class has a session must not: a miss would leave the agent's system
    // out of a job's evaluation, let the sweeper forget a class an agent still uses, or have a build's message dropped
    // as one no agent can take.
    const info = { systems: ["sparc64-linux"], systemFeatures: [], mandatoryFeatures: [], concurrentTasks: 4 };
    const session = newSession();
    const raw = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await raw.request(hello({ ...info, hostname: "churn" }, session))).type, "welcome");
    const klass = classOf(info);
    let missed = 0;
    for (let round = 0; round < 150; round++) {
      const [, ...found] = await Promise.all([
        stack.setAttributes("Sessions", { sessionId: session.id }, { idleSlots: round % 4 }),
        hasSessions(klass),
        hasSessions(klass),
        systemsWithSessions().then((systems) => systems.includes("sparc64-linux")),
        // The read that decides no agent can take a build (flow/dispatch.ts), which then leaves it to the sweeper.
        sessionsOf([klass], { settled: true }).then((sessions) => ids(sessions).includes(session.id)),
      ]);
      missed += found.filter((f) => !f).length;
    }
    assert.equal(missed, 0, "reads that found no session of a class whose agent is connected");
    raw.close();
  });

  it("indexes a session written before the index at its agent's next heartbeat", async () => {
    const session = newSession();
    const info = { systems: ["mips64-linux"], systemFeatures: [], mandatoryFeatures: [], concurrentTasks: 3 };
    const raw = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await raw.request(hello({ ...info, hostname: "legacy" }, session))).type, "welcome");
    // As stored before: no capKey, no idleSlots, the unnumbered byLastSeenKeys shard.
    const { capKey: _cap, idleSlots: _idle, ...legacy } = (await stack.getItem("Sessions", { sessionId: session.id }))!;
    await stack.put("Sessions", [{ ...legacy, shard: "s" }]);
    assert.deepEqual(ids(await sessionsOf([classOf(info)])), []);

    for (const tasksInProgress of [undefined, []]) {
      const ack = await raw.request({ type: "heartbeat", sentAt: new Date().toISOString(), ...(tasksInProgress ? { tasksInProgress } : {}) });
      assert.equal(ack.type, "heartbeat-ack");
      assert.deepEqual(ids(await idleSessionsOf([classOf(info)], 10)), [session.id]);
      assert.equal((await stack.getItem("Sessions", { sessionId: session.id }))?.idleSlots, 3);
      // The other kind of heartbeat (with the task list) does the same: checked on a session made legacy again.
      const { capKey: _c, idleSlots: _i, ...again } = (await stack.getItem("Sessions", { sessionId: session.id }))!;
      await stack.put("Sessions", [again]);
    }
    raw.close();
  });

  it("spreads sessions over the shards of byLastSeenKeys, and the sweeper's read of silent ones reads them all, by key", async () => {
    const raws: RawAgent[] = [];
    const sessions = Array.from({ length: 12 }, () => newSession());
    for (const session of sessions) {
      const raw = await RawAgent.connect(stack.agentSocketUrl, token);
      assert.equal((await raw.request(hello({ systems: ["riscv64-linux"], hostname: "quiet" }, session))).type, "welcome");
      raws.push(raw);
    }
    const shards = new Set<unknown>();
    for (const [i, session] of sessions.entries()) {
      shards.add((await stack.getItem("Sessions", { sessionId: session.id }))?.shard);
      // Silent for an hour, and the first one as written before shards existed.
      await stack.setAttributes("Sessions", { sessionId: session.id }, { lastSeen: `2020-01-01T00:00:${String(10 + i).padStart(2, "0")}.000Z`, ...(i === 0 ? { shard: "s" } : {}) });
    }
    assert.ok(shards.size > 1, `12 sessions in more than one shard (${[...shards].join(", ")})`);
    const quiet = await quietSessions(new Date("2021-01-01T00:00:00Z"));
    assert.deepEqual(
      quiet.map((q) => q.sessionId),
      sessions.map((q) => q.id),
      "every silent session, from every shard, quietest first",
    );
    for (const raw of raws) raw.close();
  });
  it("forgets a kind of machine retired a week ago with no session left, and never one an agent of it still uses", async () => {
    const WEEK = 7 * 24 * 3600 * 1000;
    const retired = { systems: ["mips64el-linux"], hostname: "retired" };
    const classIds = async () => (await stack.scan("AgentClasses")).map((c) => c.classId);
    const said = async (info: typeof retired) => {
      const raw = await RawAgent.connect(stack.agentSocketUrl, token);
      const session = newSession();
      assert.equal((await raw.request(hello(info, session))).type, "welcome");
      const agent = (await stack.getItem("Sessions", { sessionId: session.id }))!.agent as AgentInfo;
      return { raw, klass: classOf(agent) };
    };
    const gone = await said(retired);
    const stays = await said({ systems: ["powerpc64le-linux"], hostname: "kept" });
    gone.raw.send({ type: "goodbye" });
    await eventually(async () => ((await sessionsOf([gone.klass])).length === 0 ? true : undefined), "the retired agent's session to end");
    assert.ok((await classIds()).includes(gone.klass.classId) && (await classIds()).includes(stays.klass.classId));

    assert.equal((await sweep()).agentClassesForgotten, 0, "a kind said hello with lately stays, even with no session");
    // Both last said hello with over a week ago (the sweep's clock is now, so the kept agent's session is alive).
    const longAgo = new Date(Date.now() - WEEK - 60_000).toISOString();
    for (const { klass } of [gone, stays]) await stack.setAttributes("AgentClasses", { classId: klass.classId }, { lastHelloAt: longAgo });
    const swept = await sweep();
    assert.ok(!(await classIds()).includes(gone.klass.classId), "the retired kind is forgotten");
    assert.ok((await classIds()).includes(stays.klass.classId), "the kind with a session stays, however old its hello");
    assert.equal(swept.agentClassesForgotten, 1);

    // A hello of the forgotten kind files it again.
    const back = await said(retired);
    assert.ok((await classIds()).includes(gone.klass.classId), "back with its next hello");
    for (const agent of [gone, stays, back]) agent.raw.close();
  });
});

describe("a wake whose agent cannot take the work after all", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("wake-on")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  // Between the index read and the reservation the woken agent's slot can go (another dispatch
  // filled it, it drains or leaves): its task goes back to the queue, and nobody asks for it
  // while the other agents are idle — so the wake goes on to them. No sweeper runs here.
  it("wakes another idle agent for the task it put back", async () => {
    const events = drv("handed", "riscv64-linux");
    for (const name of ["first", "second"]) {
      const agent = ScriptedAgent.create(name, { systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 1 }, { evaluate: () => events });
      agents.push(agent);
      await agent.connect(stack.agentSocketUrl, token);
    }
    // The first reservation of the evaluation finds its agent draining, as if it had just been paused.
    let drained: string | undefined;
    const client = dynamo();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; Key?: { sessionId?: unknown } };
        if (!drained && context.commandName === "UpdateItemCommand" && input.TableName?.endsWith("-Sessions") && JSON.stringify(input).includes('"eval-')) {
          drained = input.Key?.sessionId as string;
          await stack.setAttributes("Sessions", { sessionId: drained }, { draining: true });
        }
        return next(args);
      },
      { step: "initialize", name: "drainAtReservation" },
    );
    try {
      const pushed = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/wake-on", commit: "b".repeat(40) });
      const jobId = pushed.body.jobId as string;
      await eventually(async () => (JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body).evaluation.status === "succeeded" ? true : undefined), "the evaluation, by the other agent");
    } finally {
      client.middlewareStack.remove("drainAtReservation");
    }
    assert.ok(drained, "a reservation met a draining agent");
    const evaluatedBy = agents.filter((agent) => agent.evaluations.length > 0).map((agent) => agent.session.id);
    assert.equal(evaluatedBy.length, 1);
    assert.notEqual(evaluatedBy[0], drained, "the agent that could not take it did not evaluate");
  });
});
