/**
 * An evaluation batch that creates a derivation whose inputs it did not read (no other new
 * derivation of the batch names them) looks at them once the item is written
 * (flow/register-batch.ts `advanceAll`): it clears those built by then, and an input still
 * building queues it through its edge when it settles. That settle can come between the look's
 * read and its clear — it clears its own input and finds the other still pending — so the clear
 * that leaves nothing pending must queue it, or it waits until the sweeper looks (the bench's
 * `saturated` hung on one, with the sweeper off).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { dynamo } from "@nimbus/service/aws-clients";
import { attribute, buildOf, derivation, derivationItem, drv, finished, push, succeeded } from "./support/graph-events.ts";
import { agentSuite } from "./support/agent-suite.ts";
import type { RawAgent } from "./support/raw-agent.ts";
import { eventually } from "./support/stack.ts";

const HOLD = "hold-the-batch-clear";

describe("a batch's look at a new derivation's inputs, with another input settling between its read and its clear", () => {
  const suite = agentSuite("batch-clear");
  let agent: RawAgent;
  after(() => dynamo().middlewareStack.remove(HOLD));

  /** Evaluates `repository`'s push with `events` in one batch, not waiting for its ack; the evaluation's task id. */
  async function evaluate(repository: string, commit: string, events: unknown[]): Promise<{ jobId: string; taskId: string }> {
    const jobId = await push(suite.stack, repository, commit);
    const task = (await eventually(async () => agent.messages.find((m) => m.type === "evaluate" && m.jobId === jobId), "the evaluation")) as { taskId: string };
    agent.send({ type: "evaluation-events", taskId: task.taskId, seq: 0, events });
    return { jobId, taskId: task.taskId };
  }
  const acked = (taskId: string) => eventually(async () => agent.messages.find((m) => m.type === "ack" && m.taskId === taskId), "the batch's ack", 20_000);

  it("queues it: the clear that leaves nothing pending does", async () => {
    ({ agent } = await suite.agentOn("both", "x86_64-linux", 4));
    // One job builds both inputs; one is held building.
    const first = await evaluate("acme/inputs", "1".repeat(40), [derivation("race-one"), derivation("race-two"), attribute("race-one"), attribute("race-two")]);
    await acked(first.taskId);
    agent.send({ type: "evaluation-done", taskId: first.taskId, batches: 1, status: "succeeded" });
    const one = await buildOf(agent, "race-one");
    const two = await buildOf(agent, "race-two");
    agent.send(succeeded(one));
    await eventually(async () => ((await derivationItem(suite.stack, "race-one"))?.status === "succeeded" ? true : undefined), "race-one built");

    // The batch's clear of race-one off the new dependent waits until race-two's settle has cleared race-two off it.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const atClear = new Promise<void>((resolve) => (reached = resolve));
    dynamo().middlewareStack.add(
      (next) => async (args) => {
        const input = (args as { input?: { Key?: { drvPath?: string }; UpdateExpression?: string; ExpressionAttributeValues?: Record<string, unknown> } }).input;
        const inputs = input?.ExpressionAttributeValues?.[":inputs"];
        if (input?.Key?.drvPath === drv("race-dependent") && input.UpdateExpression?.startsWith("DELETE pendingInputs") && inputs instanceof Set && inputs.has(drv("race-one"))) {
          reached();
          await released;
        }
        return next(args);
      },
      { step: "initialize", name: HOLD },
    );
    // A second job names only the dependent: its batch reads neither input before creating it.
    const second = await evaluate("acme/dependent", "2".repeat(40), [derivation("race-dependent", ["race-one", "race-two"]), attribute("race-dependent")]);
    await atClear;
    agent.send(succeeded(two));
    const pendingOnItem = async () => [...(((await suite.stack.getItem("Derivations", { drvPath: drv("race-dependent") }))?.pendingInputs as Set<string> | undefined) ?? [])];
    await eventually(async () => ((await pendingOnItem()).length === 1 ? true : undefined), "race-two's settle to clear race-two off the dependent");
    assert.deepEqual(await pendingOnItem(), [drv("race-one")], "race-two's settle found race-one still pending");
    release();
    dynamo().middlewareStack.remove(HOLD);
    await acked(second.taskId);
    agent.send({ type: "evaluation-done", taskId: second.taskId, batches: 1, status: "succeeded" });

    // Nothing pending, and the sweeper is off: only the batch's own clear can have queued it.
    const build = await buildOf(agent, "race-dependent");
    agent.send(succeeded(build));
    assert.equal((await finished(suite.stack, second.jobId)).status, "succeeded");
    assert.equal((await finished(suite.stack, first.jobId)).status, "succeeded");
  });
});
