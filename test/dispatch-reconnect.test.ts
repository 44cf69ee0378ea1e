/**
 * A dispatch that read an agent's session a moment before the agent reconnected, through the
 * real local stack: the task it leases must reach the agent on its new connection. Its hello
 * could not list the task (not yet reserved then), so no later reconnect would bring it — seen
 * as a build `building` forever in the chaos test.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import { JobView, type EvaluationEvent } from "@nimbus/protocol";
import { dispatchTo } from "../packages/service/src/flow/dispatch.ts";
import { getSessionLoad } from "../packages/service/src/storage/sessions.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const DRV = `/nix/store/${"f".repeat(32)}-needs-f.drv`;
const EVENTS: EvaluationEvent[] = [
  { kind: "derivation", drvPath: DRV, system: "x86_64-linux", requiredFeatures: ["f"], inputDrvs: [], outputs: { out: "/nix/store/needs-f-out" } },
  { kind: "attribute", path: ["needsF"], drvPath: DRV, attributeType: "regular", needsBuild: true },
];

describe("dispatch to an agent that reconnected meanwhile", () => {
  let stack: TestStack;
  let evaluator: ScriptedAgent;
  let agent: ScriptedAgent;
  let token: string;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("reconnect")).token;
    evaluator = ScriptedAgent.create("evaluator", { concurrentTasks: 1 }, { evaluate: () => EVENTS });
    // Either may evaluate; only the builder can build (feature f).
    agent = ScriptedAgent.create("builder", { systemFeatures: ["f"], concurrentTasks: 1 }, { evaluate: () => EVENTS, buildMs: 5 });
    await evaluator.connect(stack.agentSocketUrl, token);
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    evaluator?.close();
    agent?.close();
    await stack?.cleanup();
  });

  it("sends the task to the connection the session has now, not the one it was read with", async () => {
    // What a dispatch read of the builder's session: its first connection, and feature f.
    const read = (await getSessionLoad(agent.session.id))!;
    const first = agent.connectionId!;
    assert.equal(read.connectionId, first);

    // The builder comes back on a new connection (same session), its configuration changed: no f
    // now, so nothing wakes it for the build below, which stays queued.
    agent.drop();
    await eventually(async () => (stack.gateway.connectionIds().includes(first) ? undefined : true), "the first connection to be gone");
    agent.info = { ...agent.info, systemFeatures: [] };
    await agent.connect(stack.agentSocketUrl, token);
    assert.notEqual(agent.connectionId, first);

    const pushed = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/reconnect", commit: "f".repeat(40) });
    const jobId = pushed.body.jobId as string;
    await eventually(async () => {
      const view = JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);
      return view.counts.queued === 1 ? true : undefined;
    }, "the build to be queued");
    // The builder may have been the one woken to evaluate: its slot is free once the evaluation is in.
    await eventually(async () => ((await getSessionLoad(agent.session.id))?.runningTasks === 0 ? true : undefined), "the builder's slot to be free");
    assert.deepEqual(agent.builds, []);

    // The dispatch goes on with what it read: leases the build to the session, sends it to the
    // first connection (gone) — and then to the one the session has now.
    assert.equal(await dispatchTo(read), 1);
    await eventually(async () => (agent.settled.includes(DRV) ? true : undefined), "the builder to get and settle the build");
    await eventually(async () => (JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body).status === "succeeded" ? true : undefined), "the job to succeed");
  });
});
