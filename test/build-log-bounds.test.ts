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
});
