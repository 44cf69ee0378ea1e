/**
 * `build-pushing` at the protocol level (docs/protocol.md): the agent says Nix built it and its
 * outputs are being pushed; the service frees the build's slot at once — the agent is given its
 * next task — while the build keeps its lease, its job waits, and the result that follows gives
 * the task up without counting the slot a second time.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import { AgentList, type BuildTask, type ServiceMessage } from "@nimbus/protocol";
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
