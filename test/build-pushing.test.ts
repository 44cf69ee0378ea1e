/**
 * `build-pushing` at the protocol level (docs/protocol.md): the agent says Nix built it and its
 * outputs are being pushed; the service frees the build's slot at once — the agent is given its
 * next task — while the build keeps its lease, its job waits, and the result that follows gives
 * the task up without counting the slot a second time. With a build waiting, the slot goes
 * straight to it: the build goes `pushing` in the write that reserves the slot for the next.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import { AgentList, type BuildTask, type ServiceMessage } from "@nimbus/protocol";
import { handleAgentFrame } from "../packages/service/src/edges/agent-messages.ts";
import { releaseTask } from "../packages/service/src/storage/sessions.ts";
import { agentSuite } from "./support/agent-suite.ts";
import { recording, type Request } from "./support/count-requests.ts";
import { attribute, buildOf, derivation, derivationItem, evaluatedJob, finished, succeeded } from "./support/graph-events.ts";
import { oneBuild } from "./support/one-build.ts";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const DRV = "/nix/store/pppppppppppppppppppppppppppppppp-pushed.drv";

describe("build-pushing frees the slot while the outputs go up", () => {
  let stack: TestStack;
  let agent: RawAgent;
  let build: BuildTask;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("pushing");
    agent = await RawAgent.connect(stack.agentSocketUrl, token);
    // One slot: anything it is given while the build is held shows that slot free.
    assert.equal((await agent.request(hello({ hostname: "pusher", concurrentTasks: 1 }))).type, "welcome");
    ({ build } = await oneBuild(stack, agent, DRV, "acme/pushing", "e".repeat(40)));
  });
  after(async () => {
    agent?.close();
    await stack.cleanup();
  });

  const session = async () => {
    const [item] = await stack.scan("Sessions");
    return item as { runningTasks: number; tasks: Record<string, { pushing?: boolean }> };
  };
  const derivation = async () => (await stack.getItem("Derivations", { drvPath: DRV })) as { status: string; sources?: Set<string> };
  const job = async (repository: string) => (await stack.scan("Jobs")).find((j) => j.repository === repository) as { status: string } | undefined;

  it("refuses it for a task the agent does not hold, or naming another derivation, and changes nothing", async () => {
    const before = await session();
    for (const [what, message] of [
      ["a task nobody holds", { type: "build-pushing", taskId: "b-0000000000000000-0", drvPath: DRV }],
      ["another derivation", { type: "build-pushing", taskId: build.taskId, drvPath: "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-other.drv" }],
    ] as const) {
      const reply = await agent.request(message);
      assert.equal(reply.type === "error" && reply.code, "unknown-task", `${what}: ${JSON.stringify(reply)}`);
    }
    assert.deepEqual(await session(), before);
  });

  it("gives the agent its next task while the build holds its lease; the result then releases it once", async () => {
    assert.equal((await session()).runningTasks, 1);
    const seen = agent.messages.length;
    agent.send({ type: "build-pushing", taskId: build.taskId, drvPath: DRV });
    const freed = await eventually(async () => {
      const s = await session();
      return s.runningTasks === 0 && s.tasks[build.taskId]?.pushing === true ? s : undefined;
    }, "the slot to be freed");
    assert.ok(freed.tasks[build.taskId], "the session still holds the build");
    assert.equal((await derivation()).status, "building", "the build keeps its lease until the result");
    assert.equal((await job("acme/pushing"))?.status, "building", "its job waits for the push");
    const [listed] = AgentList.parse((await stack.api("GET", "/api/agents")).body).agents;
    assert.deepEqual(
      listed!.tasks!.map(({ taskId, pushing }) => ({ taskId, pushing })),
      [{ taskId: build.taskId, pushing: true }],
      "the agents API shows the build as pushing",
    );
    assert.equal(listed!.runningTasks, 0, "and its slot as free");

    // A second job: its evaluation goes to the one-slot agent, which still holds the build.
    await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/second", commit: "f".repeat(40) });
    const evaluation = await eventually(async () => agent.messages.slice(seen).find((m): m is Extract<ServiceMessage, { type: "evaluate" }> => m.type === "evaluate"), "the next task", 15_000);
    assert.equal((await session()).runningTasks, 1);

    // Said twice (a re-sent frame): nothing more is freed.
    agent.send({ type: "build-pushing", taskId: build.taskId, drvPath: DRV });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await session()).runningTasks, 1);

    const ack = await agent.request({
      type: "build-result",
      taskId: build.taskId,
      drvPath: DRV,
      status: "succeeded",
      outputs: { out: "/nix/store/pppppppppppppppppppppppppppppppp-pushed" },
      caches: [{ cache: "shared", status: "pushed", paths: 1, alreadyPresent: 0 }],
    });
    // Its one slot is the evaluation's: no slot stayed empty, so it is not told to ask again.
    assert.deepEqual(ack, { type: "result-ack", taskId: build.taskId });
    const after = await session();
    assert.equal(after.tasks[build.taskId], undefined, "the build is given up");
    assert.deepEqual(Object.keys(after.tasks), [evaluation.taskId]);
    assert.equal(after.runningTasks, 1, "the evaluation's slot only: the build's was not counted twice");
    const drv = await derivation();
    assert.equal(drv.status, "succeeded");
    assert.ok(drv.sources?.has("cache:shared"), "the outputs are where the result said they were pushed");
    assert.equal((await eventually(async () => ((await job("acme/pushing"))?.status === "succeeded" ? "succeeded" : undefined), "the job's verdict")), "succeeded");
  });
});

describe("build-pushing hands its slot on to the next build", () => {
  const suite = agentSuite("pushing-hand-on");
  const isSessionWrite = (r: Request) => r.command === "UpdateItemCommand" && /-Sessions$/.test(r.input.TableName);
  const pushing = (build: { taskId: string; drvPath: string }) => JSON.stringify({ type: "build-pushing", taskId: build.taskId, drvPath: build.drvPath });
  const sessionOf = async (sessionId: string) =>
    (await suite.stack.getItem("Sessions", { sessionId })) as { runningTasks: number; tasks: Record<string, { pushing?: boolean }> } | undefined;

  it("marks the build pushing and reserves the slot for the queued build in one Sessions write", async () => {
    const system = "or1k-linux";
    const { agent, connectionId, sessionId } = await suite.agentOn("hand-on-pusher", system);
    const jobId = await evaluatedJob(suite.stack, agent, "acme/pushing-hand-on", [
      derivation("push-a", [], { system }),
      derivation("push-b", [], { system }),
      attribute("push-a"),
      attribute("push-b"),
    ]);
    // One slot: the first build holds it, the other waits in its queue.
    const first = await eventually(async () => agent.messages.find((m) => m.type === "build"), "the first build");
    const other = first.type === "build" && first.drvPath.endsWith("push-a.drv") ? "push-b" : "push-a";

    const requests = await recording(() => handleAgentFrame(connectionId, pushing(first as { taskId: string; drvPath: string })));
    const next = await buildOf(agent, other);
    const writes = requests.filter((r) => isSessionWrite(r) && r.input.Key?.sessionId === sessionId);
    assert.equal(writes.length, 1, `one Sessions write, neither a free slot nor a reservation apart: ${writes.map((w) => w.input.UpdateExpression).join(" | ")}`);
    assert.match(writes[0]!.input.UpdateExpression, /pushing = :yes, tasks\.#to = :task/);
    assert.doesNotMatch(writes[0]!.input.UpdateExpression, /runningTasks/, "the count unchanged: the slot passed from one build to the next");
    const session = await sessionOf(sessionId);
    assert.equal(session?.runningTasks, 1);
    assert.equal(session?.tasks[(first as { taskId: string }).taskId]?.pushing, true, "the first build is pushing, its lease kept");
    assert.ok(session?.tasks[next.taskId], "the next build holds the slot");
    assert.equal((await derivationItem(suite.stack, first.type === "build" && first.drvPath.endsWith("push-a.drv") ? "push-a" : "push-b"))?.status, "building");

    await handleAgentFrame(connectionId, succeeded(first as { taskId: string; drvPath: string }));
    await handleAgentFrame(connectionId, succeeded(next));
    assert.equal((await finished(suite.stack, jobId)).status, "succeeded");
    assert.equal((await sessionOf(sessionId))?.runningTasks, 0, "each slot counted once");
  });

  it("refuses a pushing whose build the session no longer holds: unknown-task after the dispatch, which reserved nothing", async () => {
    const system = "csky-linux";
    const { agent, connectionId, sessionId } = await suite.agentOn("refused-pusher", system);
    await evaluatedJob(suite.stack, agent, "acme/pushing-refused", [
      derivation("refused-a", [], { system }),
      derivation("refused-b", [], { system }),
      attribute("refused-a"),
      attribute("refused-b"),
    ]);
    const first = (await eventually(async () => agent.messages.find((m) => m.type === "build"), "the first build")) as { taskId: string; drvPath: string };
    const other = first.drvPath.endsWith("refused-a.drv") ? "refused-b" : "refused-a";
    // The session gives the build up behind the handler's copy (as a heartbeat's reconcile or another container would).
    assert.ok(await releaseTask(sessionId, first.taskId));

    const seen = agent.messages.length;
    await handleAgentFrame(connectionId, pushing(first));
    const refusal = await eventually(async () => agent.messages.slice(seen).find((m) => m.type === "error"), "the refusal");
    assert.equal(refusal.type === "error" && refusal.code, "unknown-task");
    assert.equal(refusal.type === "error" && refusal.taskId, first.taskId);
    assert.equal(agent.messages.slice(seen).filter((m) => m.type === "build").length, 0, "no build was sent on the refused slot");
    const session = await sessionOf(sessionId);
    assert.deepEqual([session?.runningTasks, Object.keys(session?.tasks ?? {})], [0, []], "nothing reserved, nothing marked pushing");
    assert.equal((await derivationItem(suite.stack, other))?.status, "queued", "the waiting build is still queued, for whoever asks");
  });
});
