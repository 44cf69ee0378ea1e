/**
 * Pages of a fan-out are walked a few at a time, not one after the other: a settle clears its
 * page of dependents 16 at a time (flow/settle.ts `tellDependents`: a hub's page of 100 was 100
 * rounds of writes before its last dependent could be queued), and a cancellation cancels 16 of
 * its job's derivations at a time (flow/job-cancel.ts `continueCancel`). Each write is held here
 * until 16 are in flight or 300 ms pass, so the most in flight shows how the page was walked:
 * one at a time would be 1, an unbounded walk all 20. Every dependent is still built once, every
 * derivation cancelled once.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { BuildTask } from "@nimbus/protocol";
import { dynamo } from "@nimbus/service/aws-clients";
import { attribute, buildOf, derivation, drv, evaluatedJob, finished, jobView, succeeded } from "./support/graph-events.ts";
import { agentSuite } from "./support/agent-suite.ts";
import { eventually } from "./support/stack.ts";

const HOLD = "hold-the-page-writes";
const DEPENDENTS = 20;
/** The bound both keep to (storage/dynamo-batch.ts WRITES_AT_ONCE). */
const AT_ONCE = 16;

type WriteInput = { UpdateExpression?: string; ExpressionAttributeValues?: Record<string, unknown> };

/** Holds each DynamoDB write `matches` picks until AT_ONCE of them are in flight or 300 ms pass; `most` is the most in flight. */
function holdWrites(matches: (input: WriteInput) => boolean): { most: number } {
  const held = { most: 0 };
  let inFlight = 0;
  let wake = () => {};
  dynamo().middlewareStack.add(
    (next) => async (args) => {
      const input = (args as { input?: WriteInput }).input;
      if (!input || !matches(input)) return next(args);
      inFlight++;
      held.most = Math.max(held.most, inFlight);
      wake();
      const deadline = Date.now() + 300;
      while (inFlight < AT_ONCE && Date.now() < deadline) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, deadline - Date.now())));
      wake();
      try {
        return await next(args);
      } finally {
        inFlight--;
      }
    },
    { step: "initialize", name: HOLD },
  );
  return held;
}

describe("a settle's page of dependents, and a cancellation's page of derivations", () => {
  const suite = agentSuite("page-at-once");
  after(() => dynamo().middlewareStack.remove(HOLD));

  it("is cleared a few at a time, at most 16, and every dependent is built once", async () => {
    const { agent } = await suite.agentOn("pager", "x86_64-linux", 4);
    const names = Array.from({ length: DEPENDENTS }, (_, i) => `page-dependent-${i}`);
    const jobId = await evaluatedJob(suite.stack, agent, "acme/hub", [
      derivation("page-hub"),
      ...names.map((name) => derivation(name, ["page-hub"])),
      ...names.map((name) => attribute(name)),
    ]);

    const held = holdWrites((input) => {
      const inputs = input.ExpressionAttributeValues?.[":inputs"];
      return input.UpdateExpression?.startsWith("DELETE pendingInputs") === true && inputs instanceof Set && inputs.has(drv("page-hub"));
    });

    agent.send(succeeded(await buildOf(agent, "page-hub")));
    // The dependents' builds in whatever order they come, four slots at a time.
    const answered = new Set<string>();
    while (answered.size < DEPENDENTS) {
      const build = await eventually(
        async () => agent.messages.find((m): m is BuildTask => m.type === "build" && m.drvPath !== drv("page-hub") && !answered.has(m.taskId)),
        () => `a dependent's build (${answered.size} of ${DEPENDENTS} answered)`,
      );
      answered.add(build.taskId);
      agent.send(succeeded(build));
    }
    assert.equal((await finished(suite.stack, jobId, 30_000)).status, "succeeded");
    dynamo().middlewareStack.remove(HOLD);

    assert.ok(held.most > 1, `the page's clears went one at a time (at most ${held.most} in flight)`);
    assert.ok(held.most <= AT_ONCE, `${held.most} clears in flight at once: the page is not bounded to ${AT_ONCE}`);
    for (const name of names) assert.equal(agent.messages.filter((m) => m.type === "build" && m.drvPath === drv(name)).length, 1, `${name} built once`);
  });

  it("is cancelled a few at a time, at most 16, each derivation once", async () => {
    // No agent builds riscv64-linux: the job's derivations wait in their queue until cancelled.
    const { agent } = await suite.agentOn("canceller", "aarch64-linux", 1);
    const names = Array.from({ length: DEPENDENTS }, (_, i) => `page-cancelled-${i}`);
    const events = [...names.map((name) => derivation(name, [], { system: "riscv64-linux" })), ...names.map((name) => attribute(name))];
    const jobId = await evaluatedJob(suite.stack, agent, "acme/cancel-page", events);
    await eventually(async () => ((await suite.stack.scan("Derivations")).filter((d) => String(d.drvPath).includes("-page-cancelled-") && d.status === "queued").length === DEPENDENTS ? true : undefined), "all of them queued");

    const held = holdWrites((input) => input.ExpressionAttributeValues?.[":to"] === "cancelled");
    const cancelled = await suite.stack.api("POST", `/api/jobs/${jobId}/cancel`);
    dynamo().middlewareStack.remove(HOLD);
    assert.equal(cancelled.status, 200);
    assert.deepEqual(cancelled.body, { id: jobId, status: "cancelled", complete: true });

    assert.ok(held.most > 1, `the page's cancels went one at a time (at most ${held.most} in flight)`);
    assert.ok(held.most <= AT_ONCE, `${held.most} cancels in flight at once: the page is not bounded to ${AT_ONCE}`);
    const items = (await suite.stack.scan("Derivations")).filter((d) => String(d.drvPath).includes("-page-cancelled-"));
    assert.equal(items.length, DEPENDENTS);
    for (const item of items) {
      assert.equal(item.status, "cancelled", `${item.drvPath} cancelled`);
      assert.equal((item.history as { status: string }[]).filter((h) => h.status === "cancelled").length, 1, `${item.drvPath} cancelled once`);
    }
    const job = await jobView(suite.stack, jobId);
    assert.equal(job.status, "cancelled");
    assert.equal(job.counts.cancelled, DEPENDENTS);
  });
});
