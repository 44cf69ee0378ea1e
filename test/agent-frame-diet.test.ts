/**
 * Fewer requests per build on the agent-message path (issue #11, docs/scale.md), against the
 * real local stack with a protocol-level agent: a build-result whose pushes went well writes
 * nothing about the agent's caches unless a problem with one of them is on record — which a
 * failed push still notes and the next good push to that cache still clears.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { BuildResult } from "@nimbus/protocol";
import { dynamo } from "../packages/service/src/platform/aws-clients.ts";
import { oneBuild } from "./support/one-build.ts";
import { hello, RawAgent } from "./support/raw-agent.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

/** Counts the service's DynamoDB requests that `matches` while `fn` runs. */
async function counting(matches: (command: string, input: Record<string, unknown>) => boolean, fn: () => Promise<void>): Promise<number> {
  let count = 0;
  const name = `frameDietCount${Math.random().toString(36).slice(2)}`;
  dynamo().middlewareStack.add(
    (next, context) => async (args) => {
      if (matches(context.commandName ?? "", args.input as Record<string, unknown>)) count++;
      return next(args);
    },
    { step: "initialize", name },
  );
  try {
    await fn();
  } finally {
    dynamo().middlewareStack.remove(name);
  }
  return count;
}

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
    assert.deepEqual(ack, { type: "result-ack", taskId: build.taskId });
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
});
