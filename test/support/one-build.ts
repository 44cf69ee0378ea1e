import assert from "node:assert/strict";
import { sendSignedPush } from "@nimbus/cli";
import type { BuildTask, EvaluateTask } from "@nimbus/protocol";
import type { RawAgent } from "./raw-agent.ts";
import { eventually, type TestStack } from "./stack.ts";

/**
 * Pushes a commit whose evaluation (done by `agent`) yields one derivation to build, and waits
 * until the agent holds its build task; returns both tasks. It also waits for the evaluation's
 * `result-ack`, which may come before or after the build: a test that then reads "the next
 * message" must not receive it instead of the answer it asked for.
 */
export async function oneBuild(stack: TestStack, agent: RawAgent, drvPath: string, repository: string, commit: string): Promise<{ evaluation: EvaluateTask; build: BuildTask }> {
  const seen = agent.messages.length;
  await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository, commit });
  const evaluation = (await agent.next(seen)) as EvaluateTask;
  const name = drvPath.replace(/^.*?-/, "").replace(/\.drv$/, "");
  const events = [
    { kind: "derivation", drvPath, system: "x86_64-linux", requiredFeatures: [], inputDrvs: [], outputs: { out: `/nix/store/${name}` } },
    { kind: "attribute", path: [name], drvPath, attributeType: "regular", needsBuild: true },
  ];
  assert.equal((await agent.request({ type: "evaluation-events", taskId: evaluation.taskId, seq: 0, events })).type, "ack");
  agent.send({ type: "evaluation-done", taskId: evaluation.taskId, batches: 1, status: "succeeded" });
  await eventually(async () => agent.messages.find((m) => m.type === "result-ack" && m.taskId === evaluation.taskId), "the evaluation's result-ack");
  const build = (await eventually(async () => agent.messages.find((m) => m.type === "build" && m.drvPath === drvPath), "the build task")) as BuildTask;
  return { evaluation, build };
}
