/**
 * Full classes (flow/full-classes.ts, docs/protocol.md "Asking again") through the real local
 * stack: a wake that found a capability class with no free slot does not ask the index about it
 * again for `NIMBUS_FULL_CLASS_TRUST_MS`, and an agent whose freed slot stayed empty is told to
 * ask for work again after longer than that — and finds the work a skipped wake left it. A slot
 * freed in the handler that believes ends its belief; one freed in another (another Lambda
 * container in AWS) does not, which is what the agent's asking again is for.
 * The trust is long here (30 s) so that every step below runs inside it, however slow the machine.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import { ASK_AGAIN_MARGIN_MS, capabilityClassOf } from "@nimbus/core";
import type { BuildTask, EvaluationEvent, ServiceMessage } from "@nimbus/protocol";
import { fullSince, noteClassLook } from "../packages/service/src/storage/full-class-beliefs.ts";
import { hello, RawAgent } from "./support/raw-agent.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const TRUST_MS = 30_000;
const RISCV = { systems: ["riscv64-linux"], systemFeatures: [], mandatoryFeatures: [] };
const RISCV_CLASS = capabilityClassOf(RISCV).classId;

const drv = (name: string): EvaluationEvent[] => {
  const drvPath = `/nix/store/${name.padEnd(32, "f").slice(0, 32)}-${name}.drv`;
  return [
    { kind: "derivation", drvPath, system: "riscv64-linux", requiredFeatures: [], inputDrvs: [], outputs: { out: drvPath.replace(/\.drv$/, "") } },
    { kind: "attribute", path: [name], drvPath, attributeType: "regular", needsBuild: true },
  ];
};
const pathOf = (events: EvaluationEvent[]) => (events[0] as { drvPath: string }).drvPath;

describe("a class found full, and the agent that asks again", () => {
  let stack: TestStack;
  let token: string;
  let evaluator: ScriptedAgent;
  let riscv: RawAgent;
  const events: EvaluationEvent[] = [];
  let pushes = 0;

  const push = async (next: EvaluationEvent[]) => {
    events.splice(0, events.length, ...next);
    const commit = (++pushes).toString(16).padStart(40, "0");
    await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/full", commit });
  };
  const builds = (agent: RawAgent) => agent.messages.filter((m): m is BuildTask => m.type === "build");
  const buildOf = async (agent: RawAgent, drvPath: string) =>
    eventually(async () => builds(agent).find((b) => b.drvPath === drvPath), `a build of ${drvPath}`, 60_000);
  const result = (task: BuildTask) => ({ type: "build-result", taskId: task.taskId, drvPath: task.drvPath, status: "succeeded", outputs: { out: task.drvPath.replace(/\.drv$/, "") }, logTail: [] });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0, environment: { NIMBUS_FULL_CLASS_TRUST_MS: String(TRUST_MS) } });
    token = (await stack.createToken("full-classes")).token;
    // Evaluates every push; builds nothing of riscv64.
    evaluator = ScriptedAgent.create("evaluator", { systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 4 }, { evaluate: () => events, buildMs: 0 });
    await evaluator.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    evaluator?.close();
    riscv?.close();
    await stack?.cleanup();
  });

  it("skips the full class's index for later work, tells the agent whose slot stayed empty to ask again, and gives it that work when it asks", async () => {
    // The first build is queued before the only riscv64 agent connects (so the job's evaluation, which any agent may
    // take, goes to the evaluator); the agent takes it when it says hello, and its one slot is full.
    const first = drv("first");
    await push(first);
    await eventually(async () => ((await queued(stack, pathOf(first))) ? true : undefined), "the first build queued");
    riscv = await RawAgent.connect(stack.agentSocketUrl, token);
    const welcome = await riscv.request(hello({ hostname: "riscv", ...RISCV, concurrentTasks: 1 }));
    assert.equal(welcome.type, "welcome");
    // A new session was in no index when a wake last found its class full: it asks again, after longer than the trust.
    assert.equal(welcome.type === "welcome" && welcome.askAgainMs, TRUST_MS + ASK_AGAIN_MARGIN_MS);
    const firstBuild = await buildOf(riscv, pathOf(first));

    // Queued while it is full (its evaluation goes to the evaluator: the riscv64 agent has no free slot): the wake finds
    // no free slot in its class, and believes the class full from then on.
    const second = drv("second");
    await push(second);
    await eventually(async () => ((await queued(stack, pathOf(second))) ? true : undefined), "the second build queued");
    // The status is written before the wake looks at the class (register-batch sends and wakes after the queueing).
    await eventually(async () => (fullSince(RISCV_CLASS) !== undefined ? true : undefined), "the wake found the class full", 10_000);

    // Its result frees the slot, and the queued build takes it at once (its build carries the result's ack).
    riscv.send(result(firstBuild));
    const secondBuild = await buildOf(riscv, pathOf(second));
    assert.deepEqual(secondBuild.acks, [firstBuild.taskId]);

    // Nothing is queued when the second result frees the slot: the ack goes alone, telling the agent to ask again.
    const beforeFree = Date.now();
    const ack = await riscv.request(result(secondBuild));
    assert.deepEqual(ack, { type: "result-ack", taskId: secondBuild.taskId, askAgainMs: TRUST_MS + ASK_AGAIN_MARGIN_MS } satisfies ServiceMessage);
    // The free ended this handler's belief; in AWS the next wake may run in another Lambda container, whose look
    // found the class full before the slot came free (as this stack's did, at the second build's queueing).
    assert.equal(fullSince(RISCV_CLASS), undefined, "a slot freed in this handler ends its belief");
    noteClassLook(RISCV_CLASS, 0, beforeFree);

    // Work queued now, inside the trust: the wake takes the class for full and does not look for this idle agent.
    const third = drv("third");
    const seen = riscv.messages.length;
    await push(third);
    await eventually(async () => ((await queued(stack, pathOf(third))) ? true : undefined), "the third build queued");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.deepEqual(
      riscv.messages.slice(seen).filter((m) => m.type === "build"),
      [],
      "no wake brought the idle agent the build while its class was believed full",
    );

    // Asking again (as the agent does askAgainMs later) finds it.
    riscv.send({ type: "request-work" });
    await buildOf(riscv, pathOf(third));
  });
});

/** Whether a derivation is queued. */
async function queued(stack: TestStack, drvPath: string): Promise<boolean> {
  return (await stack.getItem("Derivations", { drvPath }))?.status === "queued";
}
