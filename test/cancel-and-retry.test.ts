import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { attribute, derivation, derivationItem, drv, finished, jobWhere, push } from "./support/graph-events.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// Cancelling and rerunning jobs through the API, with protocol-level agents over real sockets.

describe("cancel and rerun cycles", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("cycles")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("do not use up the retry budget: after four restarts one agent hand-back is still retried", async () => {
    // The evaluator cannot build x86_64-linux, so the derivation waits in its queue until cancelled.
    const evaluator = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, {
      evaluate: () => [derivation("cycled"), attribute("cycled")],
    });
    agents.push(evaluator);
    await evaluator.connect(stack.agentSocketUrl, token);

    let jobId = await push(stack, "acme/cycles");
    for (let cycle = 0; cycle < 4; cycle++) {
      await jobWhere(stack, jobId, (job) => job.counts.queued === 1, "its derivation to be queued");
      assert.equal((await stack.api("POST", `/api/jobs/${jobId}/cancel`)).status, 200);
      const rerun = await stack.api("POST", `/api/jobs/${jobId}/rerun`);
      assert.equal(rerun.status, 201, JSON.stringify(rerun.body));
      jobId = rerun.body.jobId;
    }
    await jobWhere(stack, jobId, (job) => job.counts.queued === 1, "its derivation to be queued");
    assert.equal((await derivationItem(stack, "cycled"))?.attempt, 4, "four restarts, four new task ids");

    // The first agent that builds it breaks (an exceptional result): that is its first retry.
    let builds = 0;
    const builder = ScriptedAgent.create("builder", { concurrentTasks: 1 }, {
      evaluate: () => [derivation("cycled"), attribute("cycled")],
      build: () => (builds++ === 0 ? { status: "exceptional" } : { status: "succeeded" }),
    });
    agents.push(builder);
    await builder.connect(stack.agentSocketUrl, token);
    const job = await finished(stack, jobId);
    const item = await derivationItem(stack, "cycled");
    assert.equal(job.status, "succeeded", `the build was retried, not given up: ${JSON.stringify(item?.failure)}`);
    assert.equal(builds, 2);
    assert.deepEqual(builder.builds.map((b) => b.drvPath), [drv("cycled"), drv("cycled")]);
  });
});

describe("cancelling a job while it evaluates", () => {
  let stack: TestStack;
  let token: string;
  let agent: ScriptedAgent;
  const slow = Array.from({ length: 40 }, (_, i) => derivation(`slow-eval-${i}`));

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("evaluating")).token;
    // One slot, an evaluation that takes a while (a batch every 300 ms) and builds nothing.
    agent = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, {
      evaluate: (task) => (task.repository === "acme/slow-eval" ? slow : [derivation("after-cancel"), attribute("after-cancel")]),
      batchSize: 1,
      batchDelayMs: 300,
    });
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent.close();
    await stack.cleanup();
  });

  it("stops the evaluation, frees the agent's slot, and never sends it again", async () => {
    const jobId = await push(stack, "acme/slow-eval");
    await jobWhere(stack, jobId, (job) => (job.counts.queued ?? 0) > 0, "the evaluation to be under way");
    const cancelled = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.equal(cancelled.status, 200);
    await eventually(async () => (agent.cancelled.includes(agent.evaluations[0]!.taskId) ? true : undefined), "the agent to be told to stop");
    const session = async () => (await stack.scan("Sessions")).find((s) => s.sessionId === agent.session.id);
    await eventually(async () => ((await session())?.runningTasks === 0 ? true : undefined), "the evaluation's slot to be free");

    // A crash and a restart with the same session: nothing of the cancelled job comes back.
    agent.kill();
    await agent.connect(stack.agentSocketUrl, token);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(agent.evaluations.length, 1, "the cancelled evaluation was not sent again");

    // The slot is the agent's to use: the next job's evaluation goes to it.
    const next = await push(stack, "acme/after-cancel", "b".repeat(40));
    await jobWhere(stack, next, (job) => job.evaluation.status === "succeeded", "the next job's evaluation");
    assert.equal(agent.evaluations.length, 2);
  });
});
