/**
 * Fewer requests per build on the agent-message path (issue #11, docs/scale.md), against the
 * real local stack with a protocol-level agent: a build-result whose pushes went well writes
 * nothing about the agent's caches unless a problem with one of them is on record — which a
 * failed push still notes and the next good push to that cache still clears; frames that change
 * no task (uploads to the built-in cache, a held build's log) and a held build's pushing and
 * result go on the handler's copy of the session from up to SESSION_TRUST_MS before — and
 * uploads are refused once that bound has passed after the session ended, while any other frame
 * is refused at once (results: test/result-trust.test.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { BuildResult, ServiceMessage } from "@nimbus/protocol";
import { handleAgentFrame, SESSION_TRUST_MS } from "../packages/service/src/edges/agent-messages.ts";
import { countDynamoRequests } from "./support/count-requests.ts";
import { oneBuild } from "./support/one-build.ts";
import { hello, newSession, RawAgent } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { ASK_AGAIN_MS } from "./support/ask-again.ts";

const counting = countDynamoRequests;

const sessionReads = (command: string, input: Record<string, unknown>) => command === "GetItemCommand" && String(input["TableName"]).includes("Sessions");

const uploadRequest = (requestId: string) => ({
  type: "cache-upload-request",
  requestId,
  files: [{ storePath: `/nix/store/${"q".repeat(32)}-upload`, fileHash: `sha256:${"1".repeat(52)}`, fileSize: 100, compression: "zstd" }],
});

const cacheProblemWrites = (command: string, input: Record<string, unknown>) =>
  command === "UpdateItemCommand" && String(input["TableName"]).includes("Sessions") && String(input["UpdateExpression"]).includes("cacheProblems");

describe("the agent-message diet", () => {
  let stack: TestStack;
  let agent: RawAgent;
  let builds = 0;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("frame-diet");
    agent = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await agent.request(hello({ hostname: "frame-diet", concurrentTasks: 1 }))).type, "welcome");
  });
  after(async () => {
    agent?.close();
    await stack.cleanup();
  });

  const problems = async () => ((await stack.scan("Sessions"))[0] as { cacheProblems?: Record<string, { problem: string }> }).cacheProblems ?? {};

  /** One build of a fresh job, its result reporting `caches`; the cacheProblems writes its result made. */
  async function buildReporting(caches: NonNullable<BuildResult["caches"]>): Promise<number> {
    const n = ++builds;
    const drvPath = `/nix/store/${String(n).padStart(32, "d")}-diet${n}.drv`;
    const { build } = await oneBuild(stack, agent, drvPath, `acme/diet${n}`, String(n).padStart(40, "a"));
    let ack;
    const writes = await counting(cacheProblemWrites, async () => {
      ack = await agent.request({ type: "build-result", taskId: build.taskId, drvPath, status: "succeeded", outputs: { out: drvPath.replace(/\.drv$/, "") }, caches });
    });
    assert.deepEqual(ack, { type: "result-ack", taskId: build.taskId, askAgainMs: ASK_AGAIN_MS });
    return writes;
  }

  it("writes nothing about the caches for pushes that went well when no problem is on record", async () => {
    const writes = await buildReporting([{ cache: "shared", status: "pushed", paths: 1, alreadyPresent: 0 }]);
    assert.equal(writes, 0, "no cacheProblems write");
    assert.deepEqual(await problems(), {});
  });

  it("notes a failed push, clears it with the next good push to that cache, then writes nothing again", async () => {
    assert.ok((await buildReporting([{ cache: "shared", status: "failed", reason: "HTTP 403: read-only" }])) > 0);
    assert.deepEqual(Object.keys(await problems()), ["shared"]);
    assert.match((await problems())["shared"]!.problem, /403/);
    // A good push to another cache leaves the problem be (nothing to write); one to "shared" clears it.
    assert.equal(await buildReporting([{ cache: "other", status: "pushed", paths: 1, alreadyPresent: 0 }]), 0);
    assert.deepEqual(Object.keys(await problems()), ["shared"]);
    assert.ok((await buildReporting([{ cache: "shared", status: "pushed", paths: 1, alreadyPresent: 0 }])) > 0);
    assert.deepEqual(await problems(), {});
    assert.equal(await buildReporting([{ cache: "shared", status: "pushed", paths: 1, alreadyPresent: 1 }]), 0);
  });

  it("reads no session for a held build's log and its uploads right after a frame that read it", async () => {
    const n = ++builds;
    const drvPath = `/nix/store/${String(n).padStart(32, "d")}-diet${n}.drv`;
    const { build } = await oneBuild(stack, agent, drvPath, `acme/diet${n}`, String(n).padStart(40, "a"));
    agent.send({ type: "build-pushing", taskId: build.taskId, drvPath });
    await eventually(async () => ((await stack.scan("Sessions"))[0] as { tasks: Record<string, { pushing?: boolean }> }).tasks[build.taskId]?.pushing, "build-pushing");
    let urls: ServiceMessage | undefined;
    const reads = await counting(sessionReads, async () => {
      agent.send({ type: "build-log", taskId: build.taskId, seq: 0, lines: ["built"] });
      await eventually(async () => ((await stack.scan("BuildLogs")).some((c) => c.drvPath === drvPath) ? true : undefined), "the log batch");
      urls = await agent.request(uploadRequest("diet-upload"));
    });
    assert.equal(urls?.type, "cache-upload-urls", JSON.stringify(urls));
    assert.equal(reads, 0, "no Sessions read for the log batch or the upload request");
    // The result goes on it too: its settle's lease condition decides (test/result-trust.test.ts).
    const resultReads = await counting(sessionReads, async () => {
      assert.equal((await agent.request({ type: "build-result", taskId: build.taskId, drvPath, status: "succeeded", outputs: { out: drvPath.replace(/\.drv$/, "") } })).type, "result-ack");
    });
    assert.equal(resultReads, 0, "no Sessions read for the result");
  });

  it("refuses an ended session's upload frames once SESSION_TRUST_MS has passed since its last read, and its other frames at once", async () => {
    const start = new Date(Date.now() + 60_000);
    const at = (ms: number) => new Date(start.getTime() + ms);
    const { token } = await stack.createToken("frame-diet-ended");
    const connect = async (hostname: string) => {
      const raw = await RawAgent.connect(stack.agentSocketUrl, token);
      const session = newSession();
      const welcome = await raw.request(hello({ hostname }, session));
      assert.equal(welcome.type, "welcome");
      return { raw, session, connectionId: (welcome as Extract<ServiceMessage, { type: "welcome" }>).connectionId };
    };
    const frame = async (target: { raw: RawAgent; connectionId: string }, message: unknown, now: Date) => {
      const seen = target.raw.messages.length;
      await handleAgentFrame(target.connectionId, JSON.stringify(message), now);
      return target.raw.next(seen);
    };
    const uploads = await connect("ended-uploads");
    const other = await connect("ended-other");
    try {
      for (const target of [uploads, other]) {
        // A frame that reads the session (and is answered: the upload request), then the session ends elsewhere: another
        // container's write, which this handler's copy does not see.
        assert.equal((await frame(target, uploadRequest("before"), start)).type, "cache-upload-urls");
        assert.ok(await stack.getItem("Sessions", { sessionId: target.session.id }));
        await stack.deleteItem("Sessions", { sessionId: target.session.id });
      }
      // Within the bound, an upload frame goes on that read; a frame that reads afresh is refused.
      assert.equal((await frame(uploads, uploadRequest("within"), at(SESSION_TRUST_MS))).type, "cache-upload-urls");
      const refusedAtOnce = await frame(other, { type: "request-work" }, at(1));
      assert.equal(refusedAtOnce.type === "error" && refusedAtOnce.code, "unknown-connection", JSON.stringify(refusedAtOnce));
      // Past it, the upload frame reads the session too, and is refused: the connection is closed.
      const refused = await frame(uploads, uploadRequest("after"), at(SESSION_TRUST_MS + 1));
      assert.equal(refused.type === "error" && refused.code, "unknown-connection", JSON.stringify(refused));
      await eventually(async () => (uploads.raw.closed ? true : undefined), "the connection to close");
    } finally {
      uploads.raw.close();
      other.raw.close();
    }
  });
});
