import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { EvaluateTask, EvaluationEvent } from "@nimbus/protocol";
import { sweep } from "@nimbus/service";
import { dynamo } from "@nimbus/service/aws-clients";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { attribute, derivation, derivationItem, drv, finished, jobWhere, push } from "./support/graph-events.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

// Jobs that must finish: races between registering, settling and the sweeper, each reproduced
// through the protocol (protocol-level agents over real sockets) against the real local stack.
// The sweeper runs only when a test calls `sweep(now)`, on the clock it is given.
const later = (ms: number) => new Date(Date.now() + ms);

describe("a derivation rebuilt while its earlier settle is still marked unpropagated", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("rebuild")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("keeps its dependents waiting when the sweeper looks, and the job succeeds", async () => {
    const events = [derivation("flaky"), derivation("needs-flaky", ["flaky"]), attribute("needs-flaky")];
    const evaluator = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, { evaluate: () => events });
    let flakyBuilds = 0;
    const builder = ScriptedAgent.create("builder", { concurrentTasks: 1 }, {
      evaluate: () => events,
      build: (task) => (task.drvPath === drv("flaky") && flakyBuilds++ === 0 ? { status: "failed", exitCode: 1 } : { status: "succeeded" }),
    });
    agents.push(evaluator, builder);
    await evaluator.connect(stack.agentSocketUrl, token);
    await builder.connect(stack.agentSocketUrl, token);

    const first = await finished(stack, await push(stack, "acme/flaky"));
    assert.deepEqual(first.counts, { failed: 1, "dependency-failed": 1 });
    builder.close();
    // The handler that settled `flaky` died after telling its dependents, before taking it
    // out of the sweeper's index (the last write of the settle flow).
    await stack.setAttributes("Derivations", { drvPath: drv("flaky") }, { propagateShard: "p" });

    const rerun = await stack.api("POST", `/api/jobs/${first.id}/rerun?rebuildFailures=true`);
    assert.equal(rerun.status, 201);
    await jobWhere(stack, rerun.body.jobId, (job) => job.counts.queued === 1 && job.counts.waiting === 1, "flaky queued again, its dependent waiting");
    // Its first registration put its inputs on its item; the restart's are rows, and the item says so.
    const restarted = await stack.getItem("Derivations", { drvPath: drv("needs-flaky") });
    assert.deepEqual([restarted?.inputsOnItem, restarted?.inputRows, [...(restarted?.pendingInputs as Set<string>)]], [true, true, [drv("flaky")]]);
    assert.equal((await stack.scan("PendingInputs")).filter((r) => r.drvPath === drv("needs-flaky")).length, 1);

    await sweep(later(5 * 60_000));
    assert.equal((await derivationItem(stack, "needs-flaky"))?.status, "waiting", "the sweeper did not fail the dependent of a derivation being rebuilt");

    await builder.connect(stack.agentSocketUrl, token);
    const job = await finished(stack, rerun.body.jobId);
    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
  });
});

describe("a split derivation restarted by a rerun", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];
  // Several derivations split in two parts, every part in one batch: their registrations run at
  // once, so both parts of each find it cancelled and both try to restart it.
  const WIDE = 6;
  const events = [
    derivation("left"),
    derivation("right"),
    ...Array.from({ length: WIDE }, (_, i) => [
      derivation(`split-${i}`, ["left"], { part: { index: 0, count: 2 } }),
      derivation(`split-${i}`, ["right"], { part: { index: 1, count: 2 } }),
      attribute(`split-${i}`),
    ]).flat(),
  ];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("parts")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("takes in both parts and is built", async () => {
    const evaluator = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, { evaluate: () => events, batchSize: 100 });
    agents.push(evaluator);
    await evaluator.connect(stack.agentSocketUrl, token);
    const first = await push(stack, "acme/split");
    await jobWhere(stack, first, (job) => job.counts.queued === 2 && job.counts.waiting === WIDE, "the parts to be waiting");
    assert.equal((await stack.api("POST", `/api/jobs/${first}/cancel`)).status, 200);

    const rerun = await stack.api("POST", `/api/jobs/${first}/rerun`);
    assert.equal(rerun.status, 201);
    await jobWhere(stack, rerun.body.jobId, (job) => job.evaluation.status === "succeeded", "the rerun's evaluation");
    const builder = ScriptedAgent.create("builder", { concurrentTasks: 4 }, { evaluate: () => events, batchSize: 100 });
    agents.push(builder);
    await builder.connect(stack.agentSocketUrl, token);
    const job = await finished(stack, rerun.body.jobId).catch(async (error) => {
      const stuck = (await stack.scan("Derivations")).filter((d) => d.status !== "succeeded");
      throw new Error(`${error.message}: ${JSON.stringify(stuck.map((d) => [d.drvPath, d.status, d.pendingInputs ?? d.pendingParts]))}`);
    });
    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
    assert.deepEqual(job.counts, { succeeded: WIDE + 2 });
  });
});

describe("a derivation with thousands of inputs to build", () => {
  let stack: TestStack;
  let agent: ScriptedAgent;
  // 6,000 store paths of a realistic length (~85 bytes) are ~500 KB: more than a DynamoDB item holds.
  const INPUTS = 6_000;
  // Most inputs were built by an earlier job (their items are written here directly: building
  // thousands through a loaded machine takes minutes); the last few are built in this one.
  const BUILT_HERE = 10;
  const inputs = Array.from({ length: INPUTS }, (_, i) => `python3.12-dependency-number-${i}-1.0`);
  // The real agent splits an event whose inputs do not fit in one frame into parts.
  const PER_PART = 300;
  const parts = Math.ceil(INPUTS / PER_PART);
  const events = [
    ...inputs.slice(-BUILT_HERE).map((name) => derivation(name)),
    ...Array.from({ length: parts }, (_, i) =>
      derivation("wide", inputs.slice(i * PER_PART, (i + 1) * PER_PART), { part: { index: i, count: parts } }),
    ),
    attribute("wide"),
  ];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const at = new Date().toISOString();
    await stack.putItems(
      "Derivations",
      inputs.slice(0, -BUILT_HERE).map((name) => ({
        drvPath: drv(name),
        system: "x86_64-linux",
        requiredFeatures: [],
        outputs: { out: `/nix/store/${name}-out` },
        status: "succeeded",
        version: 3,
        queueKey: "x86_64-linux|",
        attempt: 0,
        createdAt: at,
        updatedAt: at,
        finishedAt: at,
      })),
    );
    const { token } = await stack.createToken("wide");
    agent = ScriptedAgent.create("wide", { concurrentTasks: 4 }, { evaluate: () => events, batchSize: 100, batchBytes: 30_000 });
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent.close();
    await stack.cleanup();
  });

  it("is registered (its batches acknowledged) and built after all of them", async () => {
    const jobId = await push(stack, "acme/wide");
    await jobWhere(stack, jobId, (job) => job.evaluation.status !== "running" && job.evaluation.status !== "queued", "the evaluation to end", 60_000);
    const job = await finished(stack, jobId, 60_000);
    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
    assert.deepEqual(job.counts, { succeeded: BUILT_HERE + 1 });
    const order = agent.builds.map((b) => b.drvPath);
    assert.deepEqual(order.slice(0, -1).sort(), inputs.slice(-BUILT_HERE).map(drv).sort());
    assert.equal(order.at(-1), drv("wide"), "built last, after its inputs");
  });
});

describe("a job's copy of a derivation's status", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];
  // Every agent here evaluates any job: each repository has one derivation named after it.
  const byRepository = (task: EvaluateTask) => {
    const name = task.repository.split("/")[1]!;
    return [derivation(name), attribute(name)];
  };
  const row = async (jobId: string, name: string) =>
    (await stack.scan("JobDerivations")).find((r) => r.jobId === jobId && r.drvPath === drv(name));

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("mirrors")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  it("follows a settle made by a handler whose clock is behind the one that wrote the row", async () => {
    const agent = ScriptedAgent.create("slow-builder", { concurrentTasks: 1 }, { evaluate: byRepository, buildMs: 1500 });
    agents.push(agent);
    await agent.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/skewed");
    await jobWhere(stack, jobId, (job) => job.counts.building === 1, "the build to start");
    // The row was last written by a handler whose clock runs two minutes ahead of the one
    // that will settle the build (Lambdas do not share a clock).
    await stack.setAttributes("JobDerivations", { jobId, drvPath: drv("skewed") }, { updatedAt: later(2 * 60_000).toISOString() });
    const job = await finished(stack, jobId, 15_000);
    assert.equal(job.status, "succeeded");
    assert.equal((await row(jobId, "skewed"))?.status, "succeeded");
  });

  it("is put right by the sweeper when a job's copy was left behind, and the job finishes", async () => {
    const agent = ScriptedAgent.create("builder", { concurrentTasks: 2 }, { evaluate: byRepository });
    agents.push(agent);
    await agent.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/mirrored");
    assert.equal((await finished(stack, jobId)).status, "succeeded");
    // The mirror of the settle never reached this job's row (the index it is found through
    // lagged), so nobody finished the job: as it would stand then.
    await stack.setAttributes("JobDerivations", { jobId, drvPath: drv("mirrored") }, { status: "building", jobStatus: `${jobId}#building`, version: 2 });
    await stack.setAttributes("Jobs", { jobId }, { status: "building", activeShard: "a" });
    await sweep(later(5 * 60_000));
    const job = await finished(stack, jobId, 5_000);
    assert.equal(job.status, "succeeded");
    assert.equal((await row(jobId, "mirrored"))?.status, "succeeded");
  });
});

describe("a rerun that rebuilds a failure and its dependent at once", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("rebuild-race")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  // The dependent's registration reads the failed input before the input's own registration
  // (in the same evaluation, often the same batch) has started it over: the old failure must
  // not fail the dependent, or it stays dependency-failed while its input is built again.
  it("does not fail the dependent on the failure its own evaluation is starting over", async () => {
    const events = [derivation("flaky"), derivation("needs-flaky", ["flaky"]), attribute("needs-flaky")];
    let flakyBuilds = 0;
    const builder = ScriptedAgent.create("builder", { concurrentTasks: 1 }, {
      evaluate: () => events,
      build: (task) => (task.drvPath === drv("flaky") && flakyBuilds++ === 0 ? { status: "failed", exitCode: 1 } : { status: "succeeded" }),
    });
    agents.push(builder);
    await builder.connect(stack.agentSocketUrl, token);
    const first = await finished(stack, await push(stack, "acme/rebuild-race"));
    assert.deepEqual(first.counts, { failed: 1, "dependency-failed": 1 });

    // flaky's first write of the rerun (its restart) waits until its dependent's registration
    // has restarted it and looked at its inputs: the order in which the race loses the dependent.
    const before = (await derivationItem(stack, "needs-flaky"))?.attempt as number;
    const dependentDecided = async () => {
      const item = await derivationItem(stack, "needs-flaky");
      return (item?.attempt as number) > before;
    };
    let held = false;
    const client = dynamo();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; Key?: { drvPath?: unknown } };
        if (!held && context.commandName === "UpdateItemCommand" && input.TableName?.endsWith("-Derivations") && input.Key?.drvPath === drv("flaky")) {
          held = true;
          // At most 3 s: a registration that looks at the dependent only after flaky's restart never restarts it first.
          for (const deadline = Date.now() + 3_000; Date.now() < deadline && !(await dependentDecided()); ) await new Promise((r) => setTimeout(r, 20));
          await new Promise((r) => setTimeout(r, 300));
        }
        return next(args);
      },
      { step: "initialize", name: "holdFlaky" },
    );
    let rerun: { status: number; body: any };
    try {
      rerun = await stack.api("POST", `/api/jobs/${first.id}/rerun?rebuildFailures=true`);
      assert.equal(rerun.status, 201);
      await jobWhere(stack, rerun.body.jobId, (job) => job.evaluation.status === "succeeded", "the rerun's evaluation");
    } finally {
      client.middlewareStack.remove("holdFlaky");
    }
    assert.ok(held, "flaky's restart was held");
    const job = await finished(stack, rerun.body.jobId);
    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
    assert.equal(flakyBuilds, 2);
  });
});

describe("a dependent failed on a failure another job then started over", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("stale-failure")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  // One job keeps the failure and fails the dependent on it; another job, which needs only the
  // failed input, rebuilds it. The first job is still running (it waits for a build no agent
  // here can take): the sweeper's look at its rows starts the stale dependent over.
  it("is started over by the sweeper once its dependency is built again, and built", async () => {
    const byRepository: Record<string, EvaluationEvent[]> = {
      "acme/keeps": [derivation("shaky"), derivation("needs-shaky", ["shaky"]), attribute("needs-shaky"), derivation("far", [], { system: "riscv64-linux" }), attribute("far")],
      "acme/rebuilds": [derivation("shaky"), attribute("shaky")],
    };
    let shakyBuilds = 0;
    const builder = ScriptedAgent.create("builder", { concurrentTasks: 2 }, {
      evaluate: (task) => byRepository[task.repository]!,
      build: (task) => (task.drvPath === drv("shaky") && shakyBuilds++ === 0 ? { status: "failed", exitCode: 1 } : { status: "succeeded" }),
    });
    agents.push(builder);
    await builder.connect(stack.agentSocketUrl, token);

    const keeps = await push(stack, "acme/keeps");
    await jobWhere(stack, keeps, (job) => job.counts.failed === 1 && job.counts["dependency-failed"] === 1 && job.counts.queued === 1, "shaky failed, its dependent with it");
    const first = await finished(stack, await push(stack, "acme/rebuilds"));
    assert.equal(first.status, "failed", "the failure is kept without a rebuild");
    const rerun = await stack.api("POST", `/api/jobs/${first.id}/rerun?rebuildFailures=true`);
    assert.equal((await finished(stack, rerun.body.jobId)).status, "succeeded");
    assert.equal((await derivationItem(stack, "needs-shaky"))?.status, "dependency-failed", "nothing told the dependent");

    // The sweep's clock is past a heartbeat, so the job is quiet; the agent, silent as long, is
    // let go by it and comes back after.
    builder.close();
    const report = await sweep(later(90_000));
    assert.ok(report.jobRowsRepaired >= 1, JSON.stringify(report));
    assert.equal((await derivationItem(stack, "needs-shaky"))?.status, "queued", "started over, and ready: its dependency is built");
    await builder.connect(stack.agentSocketUrl, token);
    await jobWhere(stack, keeps, (job) => job.counts.succeeded === 2 && job.counts.queued === 1, "the dependent built, the far one still queued");
    const item = await derivationItem(stack, "needs-shaky");
    assert.equal(item?.status, "succeeded");
    assert.ok((item?.history as { reason?: string }[]).some((h) => h.reason === `${drv("shaky")} is being built again`), "its history says why it started over");
    assert.equal(shakyBuilds, 2);
  });
});

describe("a waiting derivation whose input settled without telling it", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("untold")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  // The settle of `base` reads its dependents' page as empty (as a read that missed an edge
  // would), so it tells no one and its job's copies say it told them: only the sweeper's look
  // at the job's waiting derivations can queue `top`.
  it("is queued by the sweeper's look at a quiet job's waiting derivations, and built", async () => {
    const events = [derivation("base"), derivation("top", ["base"]), attribute("top")];
    // The evaluator cannot build: `base` is built only once both are registered.
    const evaluator = ScriptedAgent.create("evaluator", { systems: ["riscv64-linux"], concurrentTasks: 1 }, { evaluate: () => events });
    const builder = ScriptedAgent.create("builder", { concurrentTasks: 1 }, { build: () => ({ status: "succeeded" }) });
    agents.push(evaluator, builder);
    await evaluator.connect(stack.agentSocketUrl, token);
    let emptied = 0;
    const client = dynamo();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string };
        if (context.commandName === "QueryCommand" && input.TableName?.endsWith("-Edges") && JSON.stringify(input).includes(drv("base"))) {
          emptied++;
          return { output: { $metadata: {}, Items: [], Count: 0, ScannedCount: 0 }, response: {} } as never;
        }
        return next(args);
      },
      { step: "initialize", name: "missBaseEdges" },
    );
    let jobId: string;
    try {
      jobId = await push(stack, "acme/untold");
      await jobWhere(stack, jobId, (job) => job.evaluation.status === "succeeded" && job.counts.queued === 1 && job.counts.waiting === 1, "both registered");
      await builder.connect(stack.agentSocketUrl, token);
      await jobWhere(stack, jobId, (job) => job.counts.succeeded === 1 && job.counts.waiting === 1, "base built, top waiting");
    } finally {
      client.middlewareStack.remove("missBaseEdges");
    }
    assert.ok(emptied >= 1, "base's settle read its dependents");
    assert.equal((await derivationItem(stack, "top"))?.status, "waiting", "nothing told top");

    // Past a heartbeat the job is quiet; the agents, silent as long, are let go and the builder comes back after.
    evaluator.close();
    builder.close();
    const report = await sweep(later(90_000));
    assert.ok(report.jobRowsRepaired >= 1, JSON.stringify(report));
    assert.equal((await derivationItem(stack, "top"))?.status, "queued", "its input is built: queued");
    await builder.connect(stack.agentSocketUrl, token);
    const job = await finished(stack, jobId);
    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
  });
});
