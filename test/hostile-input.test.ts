import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { BuildTask, EvaluateTask } from "@nimbus/protocol";
import { oneBuild } from "./support/one-build.ts";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { ASK_AGAIN_MS } from "./support/ask-again.ts";

// Table-driven: every bad or hostile message gets a clear error (or is ignored) and leaves
// every table as it was; one agent can never settle another's build.
const DRV = "/nix/store/hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh-held.drv";

describe("bad and hostile agent input", () => {
  let stack: TestStack;
  let holder: RawAgent;
  let other: RawAgent;
  let evaluation: EvaluateTask;
  let build: BuildTask;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("hostile");
    holder = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await holder.request(hello({ hostname: "holder", concurrentTasks: 2 }))).type, "welcome");
    ({ evaluation, build } = await oneBuild(stack, holder, DRV, "acme/held", "d".repeat(40)));
    // The other agent has no free slot for anything but is connected, with its own session.
    other = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await other.request(hello({ hostname: "other", systems: ["aarch64-darwin"] }))).type, "welcome");
  });
  after(async () => {
    holder?.close();
    other?.close();
    await stack.cleanup();
  });

  const tables = ["Derivations", "Jobs", "JobDerivations", "Sessions", "Connections", "BuildLogs", "JobAttributes"] as const;
  const snapshot = async () => Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await stack.scan(t)])));

  it("answers each with a clear error and changes no table", async () => {
    const result = (taskId: string, drvPath = DRV) => ({ type: "build-result", taskId, drvPath, status: "succeeded", outputs: { out: "/nix/store/held" } });
    const cases: Array<[string, () => RawAgent, unknown, string | undefined]> = [
      ["another agent's build result", () => other, result(build.taskId), "unknown-task"],
      ["another agent's build log", () => other, { type: "build-log", taskId: build.taskId, seq: 0, lines: ["forged"] }, "unknown-task"],
      ["a result for a task nobody holds", () => holder, result("b-0000000000000000-0"), "unknown-task"],
      ["a result naming another derivation", () => holder, result(build.taskId, "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-other.drv"), "unknown-task"],
      ["events for a finished evaluation", () => holder, { type: "evaluation-events", taskId: evaluation.taskId, seq: 5, events: [{ kind: "attribute-error", path: ["x"], message: "late" }] }, "unknown-task"],
      ["another agent's evaluation-done", () => other, { type: "evaluation-done", taskId: evaluation.taskId, batches: 1, status: "failed", error: "forged" }, "unknown-task"],
      ["a second hello", () => holder, hello({ hostname: "again" }), "duplicate-hello"],
      ["an ack, which agents do not send", () => holder, { type: "ack", taskId: build.taskId, seq: 7 }, "unknown-type"],
      ["a truncated frame", () => holder, '{"type":"build-result","taskId":"', "malformed-json"],
      ["a mistyped field", () => holder, { ...result(build.taskId), status: "great" }, "invalid-message"],
      ["a missing field", () => holder, { type: "build-log", taskId: build.taskId, seq: 0 }, "invalid-message"],
      ["an unknown type", () => holder, { type: "steal", taskId: build.taskId }, "unknown-type"],
      ["a negative sequence number", () => holder, { type: "build-log", taskId: build.taskId, seq: -1, lines: ["x"] }, "invalid-message"],
    ];
    const before = await snapshot();
    for (const [name, agent, message, code] of cases) {
      const reply = await agent().request(message);
      assert.equal(reply.type, "error", name);
      if (reply.type !== "error") continue;
      assert.equal(reply.code, code, `${name}: ${reply.message}`);
      assert.ok(reply.message.length > 15, name);
      assert.equal(reply.fatal, false, name);
    }
    assert.deepEqual(await snapshot(), before, "no table changed");
    assert.equal(holder.closed, undefined);
    assert.equal(other.closed, undefined);
  });

  it("lets the holder settle its build, once", async () => {
    const result = { type: "build-result", taskId: build.taskId, drvPath: DRV, status: "succeeded", outputs: { out: "/nix/store/held" } };
    assert.deepEqual(await holder.request(result), { type: "result-ack", taskId: build.taskId, askAgainMs: ASK_AGAIN_MS });
    const again = await holder.request(result);
    assert.equal(again.type === "error" && again.code, "unknown-task", "a duplicate result is refused, not applied twice");
    const [drv] = (await stack.scan("Derivations")).filter((d) => d.drvPath === DRV);
    assert.equal(drv?.status, "succeeded");
    assert.equal((drv?.builtBy as { hostname: string }).hostname, "holder");
  });
});
