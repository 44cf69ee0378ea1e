import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { LOG_BATCHES_KEPT, MAX_LOG_BATCHES, type BuildTask } from "@nimbus/protocol";
import { oneBuild } from "./support/one-build.ts";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// A build's log is bounded (issue #8, low): batch numbers stay below MAX_LOG_BATCHES (one past
// would have landed in the next attempt's chunk numbers), and the service keeps only the last
// LOG_BATCHES_KEPT batches — the tail — however long the build runs.
const DRV = "/nix/store/gggggggggggggggggggggggggggggggg-chatty.drv";

describe("a build's log, bounded", () => {
  let stack: TestStack;
  let agent: RawAgent;
  let build: BuildTask;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("logs");
    agent = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await agent.request(hello({ hostname: "chatty", concurrentTasks: 2 }))).type, "welcome");
    ({ build } = await oneBuild(stack, agent, DRV, "acme/chatty", "c".repeat(40)));
  });
  after(async () => {
    agent?.close();
    await stack.cleanup();
  });

  const chunks = async () => (await stack.scan("BuildLogs")).filter((c) => c.drvPath === DRV).length;

  it("refuses a batch numbered past the limit, and stores nothing of it", async () => {
    const before = await chunks();
    const reply = await agent.request({ type: "build-log", taskId: build.taskId, seq: MAX_LOG_BATCHES, lines: ["too far"] });
    assert.equal(reply.type === "error" && reply.code, "invalid-message", JSON.stringify(reply));
    assert.match(reply.type === "error" ? reply.message : "", /seq/);
    assert.equal(await chunks(), before);
  });

  it("keeps only the last batches of a long log, and serves its tail", async () => {
    const total = LOG_BATCHES_KEPT + 20;
    for (let seq = 0; seq < total; seq++) agent.send({ type: "build-log", taskId: build.taskId, seq, lines: [`line ${seq}`] });
    await eventually(async () => ((await stack.scan("BuildLogs")).some((c) => c.drvPath === DRV && Number(c.chunk) % 1_000_000 === total - 1) ? true : undefined), "the last batch", 60_000);
    const stored = await eventually(async () => {
      const n = await chunks();
      return n === LOG_BATCHES_KEPT ? n : undefined;
    }, `${LOG_BATCHES_KEPT} stored batches`, 30_000);
    assert.equal(stored, LOG_BATCHES_KEPT);
    const { body } = await stack.api("GET", `/api/derivations/${encodeURIComponent(DRV)}/log`);
    assert.equal(body.lines[0], `line ${total - LOG_BATCHES_KEPT}`, "the tail starts where the kept batches do");
    assert.equal(body.lines.at(-1), `line ${total - 1}`);
  });

  it("stores the last batch a result carries before the build settles, and nothing a bad or stray one carries", async () => {
    const drv = "/nix/store/hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh-short.drv";
    const { build: short } = await oneBuild(stack, agent, drv, "acme/short", "d".repeat(40));
    const stored = async () => (await stack.scan("BuildLogs")).filter((c) => c.drvPath === drv).length;
    // A batch the schema refuses refuses the whole result: nothing stored, the build still held.
    const bad = await agent.request({ type: "build-result", taskId: short.taskId, drvPath: drv, status: "succeeded", outputs: { out: "/nix/store/short" }, log: { seq: 0, lines: [] } });
    assert.equal(bad.type === "error" && bad.code, "invalid-message", JSON.stringify(bad));
    assert.equal(await stored(), 0);
    // A result for a task this session does not hold stores nothing of its log either.
    const stray = await agent.request({ type: "build-result", taskId: "b-0000000000000000-0", drvPath: drv, status: "succeeded", outputs: { out: "/nix/store/short" }, log: { seq: 0, lines: ["not mine"] } });
    assert.equal(stray.type === "error" && stray.code, "unknown-task", JSON.stringify(stray));
    assert.equal(await stored(), 0);

    agent.send({ type: "build-log", taskId: short.taskId, seq: 0, lines: ["building"] });
    agent.send({ type: "build-result", taskId: short.taskId, drvPath: drv, status: "succeeded", outputs: { out: "/nix/store/short" }, log: { seq: 1, lines: ["built", "done"] } });
    const { body } = await eventually(async () => {
      const answer = await stack.api("GET", `/api/derivations/${encodeURIComponent(drv)}`);
      return answer.body.status === "succeeded" ? answer : undefined;
    }, "the build to settle");
    assert.equal(body.status, "succeeded");
    const log = await stack.api("GET", `/api/derivations/${encodeURIComponent(drv)}/log`);
    assert.deepEqual(log.body.lines, ["building", "built", "done"], "the result's batch after the frame's, in order");
  });
});
