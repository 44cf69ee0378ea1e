import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DEFAULT_FAN_OUT_PAGE } from "@nimbus/core";
import { sweep } from "@nimbus/service";
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
    const late = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.equal(late.status, 409, "a job that ended cannot be cancelled");
    assert.match(late.body.error.message, /already ended \(succeeded\)/);
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

describe("cancelling a big job", () => {
  let stack: TestStack;
  let token: string;
  let agent: ScriptedAgent;
  // More derivations than one cancel call acts on (a fan-out page): nothing builds them (no agent can).
  const COUNT = Math.ceil(DEFAULT_FAN_OUT_PAGE * 1.5);
  const big = (prefix: string) => [
    ...Array.from({ length: COUNT }, (_, i) => derivation(`${prefix}-${i}`)),
    ...Array.from({ length: COUNT }, (_, i) => attribute(`${prefix}-${i}`)),
  ];
  const statuses = async (prefix: string) => {
    const counts: Record<string, number> = {};
    for (const d of await stack.scan("Derivations")) if (String(d.drvPath).includes(`-${prefix}-`)) counts[String(d.status)] = (counts[String(d.status)] ?? 0) + 1;
    return counts;
  };

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("big")).token;
    agent = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, {
      evaluate: (task) => big(task.repository.split("/")[1]!),
      batchSize: 100,
    });
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent.close();
    await stack.cleanup();
  });

  it("is cancelled a bounded part per call; the rest goes on through the FanOut queue, and cancelling again is harmless", async () => {
    const jobId = await push(stack, "acme/twice");
    await jobWhere(stack, jobId, (job) => job.counts.queued === COUNT, "every derivation to be queued", 60_000);
    const first = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body, { id: jobId, status: "cancelled", complete: false });
    const second = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.status, "cancelled");
    await eventually(async () => ((await statuses("twice")).cancelled === COUNT ? true : undefined), "every derivation to be cancelled");
    assert.deepEqual(await statuses("twice"), { cancelled: COUNT });
    const done = await jobWhere(stack, jobId, (job) => job.counts.cancelled === COUNT, "the job's counts once its cancellation ended");
    assert.deepEqual(done.counts, { cancelled: COUNT });
    const third = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.deepEqual([third.status, third.body], [200, { id: jobId, status: "cancelled", complete: true }], "cancelling a cancelled job again is harmless");
  });

  it("goes on by itself when nobody cancels it again, and a sweep meanwhile changes nothing twice", async () => {
    const jobId = await push(stack, "acme/swept", "c".repeat(40));
    await jobWhere(stack, jobId, (job) => job.counts.queued === COUNT, "every derivation to be queued", 60_000);
    assert.equal((await stack.api("POST", `/api/jobs/${jobId}/cancel`)).body.complete, false);
    await sweep(new Date(Date.now() + 45_000));
    await eventually(async () => ((await statuses("swept")).cancelled === COUNT ? true : undefined), "every derivation to be cancelled");
    const done = await jobWhere(stack, jobId, (job) => job.counts.cancelled === COUNT, "the job's counts once its cancellation ended");
    assert.deepEqual(done.counts, { cancelled: COUNT });
  });
});

describe("cancelling a job whose derivation another running job needs", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("shared")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("leaves the other job to finish, even when the index it is found through lagged", async () => {
    const events = () => [derivation("shared"), attribute("shared")];
    const evaluator = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, { evaluate: events });
    agents.push(evaluator);
    await evaluator.connect(stack.agentSocketUrl, token);
    const cancelled = await push(stack, "acme/first");
    await jobWhere(stack, cancelled, (job) => job.counts.queued === 1, "the shared derivation to be queued");
    const other = await push(stack, "acme/second", "d".repeat(40));
    await jobWhere(stack, other, (job) => job.evaluation.status === "succeeded" && job.counts.queued === 1, "the other job to need it too");

    // The cancel looks for other jobs needing it through the byDrv index, which had not yet
    // shown the other job's row (GSIs are eventually consistent): as if it were not there.
    const [row] = (await stack.scan("JobDerivations")).filter((r) => r.jobId === other);
    await stack.deleteItem("JobDerivations", { jobId: other, drvPath: drv("shared") });
    assert.equal((await stack.api("POST", `/api/jobs/${cancelled}/cancel`)).status, 200);
    await stack.putItems("JobDerivations", [row!]);
    assert.equal((await derivationItem(stack, "shared"))?.status, "cancelled");

    const builder = ScriptedAgent.create("builder", { concurrentTasks: 1 }, { evaluate: events });
    agents.push(builder);
    await builder.connect(stack.agentSocketUrl, token);
    await sweep(new Date(Date.now() + 45_000));
    const job = await finished(stack, other, 10_000);
    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
    assert.deepEqual(builder.builds.map((b) => b.drvPath), [drv("shared")]);
  });
});
