/**
 * A settle clears its page of dependents a few at a time, not one after the other
 * (flow/settle.ts `tellDependents`): a hub's page of 100 was 100 rounds of writes before the
 * next build could start. Each clear of the hub off a dependent is held here until 16 are in
 * flight or 300 ms pass, so the most in flight shows how the page was walked: one at a time
 * would be 1, an unbounded walk all 20. Every dependent is still queued and built once.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { BuildTask } from "@nimbus/protocol";
import { dynamo } from "@nimbus/service/aws-clients";
import { attribute, buildOf, derivation, drv, evaluatedJob, finished, succeeded } from "./support/graph-events.ts";
import { agentSuite } from "./support/agent-suite.ts";
import { eventually } from "./support/stack.ts";

const HOLD = "hold-the-hub-clears";
const DEPENDENTS = 20;
/** The bound the settle keeps to (flow/settle.ts DEPENDENTS_AT_ONCE). */
const AT_ONCE = 16;

describe("a settle's page of dependents", () => {
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

    let inFlight = 0;
    let most = 0;
    let wake = () => {};
    dynamo().middlewareStack.add(
      (next) => async (args) => {
        const input = (args as { input?: { UpdateExpression?: string; ExpressionAttributeValues?: Record<string, unknown> } }).input;
        const inputs = input?.ExpressionAttributeValues?.[":inputs"];
        if (!input?.UpdateExpression?.startsWith("DELETE pendingInputs") || !(inputs instanceof Set) || !inputs.has(drv("page-hub"))) return next(args);
        inFlight++;
        most = Math.max(most, inFlight);
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

    assert.ok(most > 1, `the page's clears went one at a time (at most ${most} in flight)`);
    assert.ok(most <= AT_ONCE, `${most} clears in flight at once: the page is not bounded to ${AT_ONCE}`);
    for (const name of names) assert.equal(agent.messages.filter((m) => m.type === "build" && m.drvPath === drv(name)).length, 1, `${name} built once`);
  });
});
