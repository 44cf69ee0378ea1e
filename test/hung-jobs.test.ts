import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sweep } from "@nimbus/service";
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

    await sweep(later(5 * 60_000));
    assert.equal((await derivationItem(stack, "needs-flaky"))?.status, "waiting", "the sweeper did not fail the dependent of a derivation being rebuilt");

    await builder.connect(stack.agentSocketUrl, token);
    const job = await finished(stack, rerun.body.jobId);
    assert.equal(job.status, "succeeded", JSON.stringify(job.counts));
  });
});
