/**
 * A build's `build-pushing` and `build-result` go on the handler's copy of the session (issue #11,
 * docs/protocol.md "Connection bookkeeping"), against the real local stack with protocol-level
 * agents: a chain's results read no session — the write that gave each link kept the copy that
 * shows it; the derivation's lease (its task and its session) decides whether a result applies,
 * so one for a lease another session holds, or from a session that ended elsewhere (its build
 * handed back and leased again), is refused and changes nothing; and a pushing build's slot is
 * counted once, also when the result's copy predates its `build-pushing`.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { BuildTask, ServiceMessage } from "@nimbus/protocol";
import { handleAgentFrame, SESSION_TRUST_MS } from "../packages/service/src/edges/agent-messages.ts";
import { WorkNotes } from "../packages/service/src/flow/new-work.ts";
import { deleteSession, recentSession } from "../packages/service/src/flow/sessions.ts";
import { buildKind } from "../packages/service/src/flow/tasks/build.ts";
import type { BuildRecord } from "../packages/service/src/flow/tasks/build-task.ts";
import { keepSessionCopy } from "../packages/service/src/storage/session-copies.ts";
import { countDynamoRequests } from "./support/count-requests.ts";
import { attribute, buildOf, derivation, derivationItem, drv, evaluatedJob, finished, succeeded } from "./support/graph-events.ts";
import type { RawAgent } from "./support/raw-agent.ts";
import { agentSuite } from "./support/agent-suite.ts";
import { eventually, type TestStack } from "./support/stack.ts";

/** The task a `result-ack` acknowledges (it may also say when to ask for work again). */
const acked = (answer: ServiceMessage | undefined) => (answer?.type === "result-ack" ? answer.taskId : answer);

const sessionReads = (command: string, input: Record<string, unknown>) => command === "GetItemCommand" && String(input["TableName"]).endsWith("-Sessions");

describe("a build's result goes on the handler's copy of its session", () => {
  const suite = agentSuite("result-trust");
  const agentOn = suite.agentOn;
  let stack: TestStack;
  before(() => {
    stack = suite.stack;
  });

  const sessionItem = async (sessionId: string) => (await stack.getItem("Sessions", { sessionId })) as { runningTasks: number; idleSlots: number; tasks: Record<string, unknown> } | undefined;

  /** The frame handled here: the Sessions reads it made, and (`answered`) the first message the agent got after it. */
  async function frame(agent: RawAgent, connectionId: string, body: string, answered = true): Promise<{ reads: number; answer: ServiceMessage | undefined }> {
    const seen = agent.messages.length;
    const reads = await countDynamoRequests(sessionReads, () => handleAgentFrame(connectionId, body));
    return { reads, answer: answered ? await agent.next(seen) : undefined };
  }

  it("reads no session for a chain's results: each link's hand-over kept the copy its result goes on", async () => {
    const system = "rt-chain-linux";
    const { agent, connectionId, sessionId } = await agentOn("rt-chain", system);
    const on = (name: string, inputs: string[] = []) => derivation(name, inputs, { system });
    const jobId = await evaluatedJob(stack, agent, "acme/result-trust-chain", [on("rt-a"), on("rt-b", ["rt-a"]), on("rt-c", ["rt-b"]), attribute("rt-c")]);
    let build: BuildTask = await buildOf(agent, "rt-a");
    for (const next of ["rt-b", "rt-c", undefined]) {
      const { reads, answer } = await frame(agent, connectionId, succeeded(build));
      assert.equal(reads, 0, `no Sessions read for ${build.drvPath}'s result`);
      if (!next) break;
      const handed = await buildOf(agent, next);
      assert.deepEqual(answer, handed, "the next link, handed over");
      assert.deepEqual(handed.acks, [build.taskId], "carrying the result's acknowledgement");
      build = handed;
    }
    const job = await finished(stack, jobId);
    assert.equal(job.status, "succeeded");
    assert.deepEqual([job.counts.succeeded, job.counts.building ?? 0], [3, 0]);
    const session = await sessionItem(sessionId);
    assert.deepEqual([session?.runningTasks, session?.idleSlots, session?.tasks], [0, 1, {}], "every slot given back, once");
  });

  it("refuses a result whose task another session holds the lease of, and changes nothing", async () => {
    const system = "rt-lease-linux";
    const { agent, connectionId, sessionId } = await agentOn("rt-lease", system);
    await evaluatedJob(stack, agent, "acme/result-trust-lease", [derivation("rt-l", [], { system }), attribute("rt-l")]);
    const build = await buildOf(agent, "rt-l");
    // The same attempt leased to another session (two dispatches received one message): the copy still shows the task.
    const lease = { taskId: build.taskId, sessionId: "another-session", leasedAt: new Date().toISOString() };
    await stack.setAttributes("Derivations", { drvPath: drv("rt-l") }, { lease });
    const before = await derivationItem(stack, "rt-l");
    const { reads, answer } = await frame(agent, connectionId, succeeded(build));
    assert.equal(answer?.type === "error" && answer.code, "unknown-task", JSON.stringify(answer));
    assert.equal(reads, 1, "the refused settle read the session afresh, to answer as a read would");
    assert.deepEqual(await derivationItem(stack, "rt-l"), before, "the derivation is as it was: still the other session's");
    const session = await sessionItem(sessionId);
    assert.deepEqual([session?.runningTasks, session?.tasks], [0, {}], "the task it cannot settle gives its slot back");
  });

  it("refuses a result from a session that ended elsewhere, its build handed back and leased again, and changes nothing", async () => {
    const system = "rt-ended-linux";
    const { agent, connectionId, sessionId } = await agentOn("rt-ended", system);
    const jobId = await evaluatedJob(stack, agent, "acme/result-trust-ended", [derivation("rt-e", [], { system }), attribute("rt-e")]);
    const build = await buildOf(agent, "rt-e");
    const copy = recentSession(sessionId, new Date(), SESSION_TRUST_MS);
    assert.ok(copy?.tasks[build.taskId], "this handler's copy shows the build");
    // Another container ends the session and hands its build back (flow/session-end.ts), dying before it closes the
    // connection, so the agent's result is still answered there; this handler's copy still shows the session.
    const ended = await deleteSession(sessionId);
    await buildKind.handBack(build.taskId, ended!.tasks[build.taskId] as BuildRecord, ended!, "lost elsewhere", new WorkNotes());
    keepSessionCopy(copy, Date.now());
    const { agent: next } = await agentOn("rt-ended-next", system);
    const retry = await buildOf(next, "rt-e");
    assert.notEqual(retry.taskId, build.taskId, "a new attempt");
    const before = await derivationItem(stack, "rt-e");
    assert.equal(before?.status, "building");

    const { reads, answer } = await frame(agent, connectionId, succeeded(build));
    assert.equal(answer?.type === "error" && answer.code, "unknown-connection", JSON.stringify(answer));
    assert.equal(reads, 1, "the refused settle read the session afresh: it is gone");
    await eventually(async () => (agent.closed ? true : undefined), "the connection to close");
    assert.deepEqual(await derivationItem(stack, "rt-e"), before, "the derivation is the new attempt's, unchanged");
    assert.equal(await sessionItem(sessionId), undefined, "no session written back");

    next.send(succeeded(retry));
    assert.equal((await finished(stack, jobId)).status, "succeeded", "the new attempt settles it, once");
  });

  it("frees a pushing build's slot once, also when the result's copy predates its build-pushing", async () => {
    const system = "rt-push-linux";
    const { agent, connectionId, sessionId } = await agentOn("rt-push", system, 2);
    const events = [derivation("rt-p1", [], { system }), derivation("rt-p2", [], { system }), attribute("rt-p1"), attribute("rt-p2")];
    const jobId = await evaluatedJob(stack, agent, "acme/result-trust-pushing", events);
    const [p1, p2] = [await buildOf(agent, "rt-p1"), await buildOf(agent, "rt-p2")];
    assert.equal((await sessionItem(sessionId))?.runningTasks, 2);

    // p1: pushing, then its result, both on the copy the pushing refreshed.
    const pushing = (b: BuildTask) => JSON.stringify({ type: "build-pushing", taskId: b.taskId, drvPath: b.drvPath });
    assert.equal((await frame(agent, connectionId, pushing(p1), false)).reads, 0, "no Sessions read for build-pushing");
    assert.deepEqual([(await sessionItem(sessionId))?.runningTasks], [1], "its slot freed at build-pushing");
    const first = await frame(agent, connectionId, succeeded(p1));
    assert.equal(first.reads, 0, "no Sessions read for its result");
    assert.deepEqual(acked(first.answer), p1.taskId);
    assert.equal((await sessionItem(sessionId))?.runningTasks, 1, "not freed a second time");

    // p2: another container handled its build-pushing; this handler's copy is from before it (not pushing).
    const stale = recentSession(sessionId, new Date(), SESSION_TRUST_MS);
    assert.ok(stale?.tasks[p2.taskId] && !("pushing" in stale.tasks[p2.taskId]!));
    await frame(agent, connectionId, pushing(p2), false);
    keepSessionCopy(stale, Date.now());
    const second = await frame(agent, connectionId, succeeded(p2));
    assert.deepEqual(acked(second.answer), p2.taskId);
    const session = await sessionItem(sessionId);
    assert.deepEqual([session?.runningTasks, session?.idleSlots, session?.tasks], [0, 2, {}], "each slot counted free once");
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });
});
