import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { RESERVATION_TIMEOUT_MS } from "@nimbus/core";
import type { BuildTask, ServiceMessage } from "@nimbus/protocol";
import { oneBuild } from "./support/one-build.ts";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// A handler that dies after it leased a task to a session but before it sent the task (a
// Lambda timeout between two writes) leaves a build the session holds and its agent never
// heard of; a connected agent never says hello again, so only its heartbeats can tell. The
// heartbeat lists the agent's tasks: what the session held for a heartbeat interval and the
// agent does not list is sent again while the lease is the session's, and its slot is freed
// once it can no longer be.
const HEARTBEAT_MS = 300;
const DRV = "/nix/store/llllllllllllllllllllllllllllllll-lost.drv";
const OTHER = "/nix/store/oooooooooooooooooooooooooooooooo-other.drv";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a heartbeat listing the agent's tasks", () => {
  let stack: TestStack;
  let agent: RawAgent;
  let build: BuildTask;
  let sessionId: string;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0, environment: { NIMBUS_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) } });
    const { token } = await stack.createToken("heartbeat");
    agent = await RawAgent.connect(stack.agentSocketUrl, token);
    const greeting = hello({ hostname: "forgetful", concurrentTasks: 2 });
    sessionId = greeting.session.id;
    assert.equal((await agent.request(greeting)).type, "welcome");
    ({ build } = await oneBuild(stack, agent, DRV, "acme/lost", "e".repeat(40)));
  });
  after(async () => {
    agent?.close();
    await stack.cleanup();
  });

  const heartbeat = (tasksInProgress: string[]) => ({ type: "heartbeat", sentAt: new Date().toISOString(), tasksInProgress });
  /** The replies to one heartbeat (the ack, then whatever it asks for). */
  const beat = async (tasks: string[]): Promise<ServiceMessage[]> => {
    const seen = agent.messages.length;
    agent.send(heartbeat(tasks));
    await agent.next(seen);
    await sleep(200);
    return agent.messages.slice(seen);
  };

  it("changes nothing while the agent lists what its session holds", async () => {
    await sleep(2 * HEARTBEAT_MS);
    const replies = await beat([build.taskId]);
    assert.deepEqual(replies.map((m) => m.type), ["heartbeat-ack"]);
  });

  it("sends a held build again when the agent does not list it (its message was lost)", async () => {
    const replies = await beat([]);
    assert.deepEqual(replies.map((m) => m.type), ["heartbeat-ack", "build"]);
    assert.deepEqual(replies[1], build, "the same task, under the same lease");
    const [drv] = (await stack.scan("Derivations")).filter((d) => d.drvPath === DRV);
    assert.equal(drv?.status, "building", "still leased to this session: nothing was retried");
  });

  it("cancels a listed task the session does not hold", async () => {
    const replies = await beat([build.taskId, "b-0000000000000000-7"]);
    assert.deepEqual(
      replies.map((m) => (m.type === "cancel" ? `cancel ${m.taskId}` : m.type)),
      ["heartbeat-ack", "cancel b-0000000000000000-7"],
    );
  });

  it("frees the slot of a reservation whose handler died before it took the lease", async () => {
    // What a dispatch that died between reserving a slot and leasing leaves: a queued derivation, a held task.
    // The id a dispatch of the queued derivation's attempt 0 reserves (docs/protocol.md, `build`).
    const taskId = `b-${createHash("sha256").update(OTHER).digest("hex").slice(0, 16)}-0`;
    const old = new Date(Date.now() - RESERVATION_TIMEOUT_MS - 1_000).toISOString();
    await stack.setAttributes("Derivations", { drvPath: OTHER }, {
      system: "x86_64-linux", requiredFeatures: [], outputs: { out: "/nix/store/other" }, status: "queued", queueKey: "x86_64-linux|",
      attempt: 0, createdAt: old, updatedAt: old, queuedAt: old,
    });
    const session = (await stack.scan("Sessions")).find((s) => s.sessionId === sessionId)!;
    await stack.setAttributes("Sessions", { sessionId }, {
      runningTasks: Number(session.runningTasks) + 1,
      tasks: { ...(session.tasks as object), [taskId]: { kind: "build", drvPath: OTHER, attempt: 0, startedAt: old } },
    });
    // Still queued for that task id, so a live dispatch could be about to lease it — but no handler runs this long.
    await beat([build.taskId]);
    const after = (await stack.scan("Sessions")).find((s) => s.sessionId === sessionId)!;
    assert.deepEqual(Object.keys(after.tasks as object), [build.taskId], "the dead reservation is gone");
    assert.equal(after.runningTasks, 1, "its slot is free again");
  });

  it("frees the slot of a task whose build went to someone else meanwhile", async () => {
    await stack.setAttributes("Derivations", { drvPath: DRV }, { lease: { taskId: build.taskId, sessionId: "someone-else", leasedAt: new Date().toISOString() } });
    await beat([]);
    const after = (await stack.scan("Sessions")).find((s) => s.sessionId === sessionId)!;
    assert.deepEqual(after.tasks, {}, "not resent, released");
    assert.equal(after.runningTasks, 0);
  });
});
