import assert from "node:assert/strict";
import { JobView, type BuildTask, type EvaluationEvent } from "@nimbus/protocol";
import { sendSignedPush } from "@nimbus/cli";
import type { RawAgent } from "./raw-agent.ts";
import { eventually, type TestStack } from "./stack.ts";

/** A store path of a `.drv` named `name` (the hash part padded from the name, so it is stable). */
export const drv = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;

export const derivation = (name: string, inputs: string[] = [], extra: Partial<EvaluationEvent & { kind: "derivation" }> = {}): EvaluationEvent => ({
  kind: "derivation",
  drvPath: drv(name),
  system: "x86_64-linux",
  requiredFeatures: [],
  inputDrvs: inputs.map(drv),
  outputs: { out: `/nix/store/${name}-out` },
  ...extra,
});

export const attribute = (name: string): EvaluationEvent => ({
  kind: "attribute",
  path: [name],
  drvPath: drv(name),
  attributeType: "regular",
  needsBuild: true,
});

/** Sends a signed push for `repository` and returns the new job's id. */
export async function push(stack: TestStack, repository: string, commit = "a".repeat(40)): Promise<string> {
  const { status, body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository, commit });
  if (status !== 201) throw new Error(`push refused: ${status} ${JSON.stringify(body)}`);
  return body.jobId as string;
}

export const jobView = async (stack: TestStack, jobId: string) => JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);

/** Waits until the job's view satisfies `ready`; a timeout says what the job last looked like. */
export function jobWhere(stack: TestStack, jobId: string, ready: (job: JobView) => boolean, what: string, timeoutMs = 20_000) {
  let last: JobView | undefined;
  return eventually(
    async () => {
      last = await jobView(stack, jobId);
      return ready(last) ? last : undefined;
    },
    () => `job ${jobId}: ${what} (last seen ${last ? `${last.status}, counts ${JSON.stringify(last.counts)}` : "never"})`,
    timeoutMs,
  );
}

export const finished = (stack: TestStack, jobId: string, timeoutMs = 20_000) =>
  jobWhere(stack, jobId, (job) => job.status !== "evaluating" && job.status !== "building", "to finish", timeoutMs);

/** A derivation item as stored (the test's view of the table). */
export async function derivationItem(stack: TestStack, name: string): Promise<Record<string, any> | undefined> {
  return (await stack.scan("Derivations")).find((d) => d.drvPath === drv(name));
}

/** Starts a job by a push whose evaluation `evaluator` takes and answers with `events` (one batch); returns the job id. */
export async function evaluatedJob(stack: TestStack, evaluator: RawAgent, repository: string, events: EvaluationEvent[], commit = "7".repeat(40)): Promise<string> {
  const jobId = await push(stack, repository, commit);
  const task = (await eventually(async () => evaluator.messages.find((m) => m.type === "evaluate" && m.jobId === jobId), "the evaluation")) as { taskId: string };
  assert.equal((await evaluator.request({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })).type, "ack");
  evaluator.send({ type: "evaluation-done", taskId: task.taskId, batches: 1, status: "succeeded" });
  return jobId;
}

/** The build of the derivation named `name` once `agent` has received it. */
export const buildOf = (agent: RawAgent, name: string) =>
  eventually(async () => agent.messages.find((m): m is BuildTask => m.type === "build" && m.drvPath === drv(name)), `${name}'s build`);

/** A `build-result` frame: the build succeeded. */
export const succeeded = (build: Pick<BuildTask, "taskId" | "drvPath">) =>
  JSON.stringify({ type: "build-result", taskId: build.taskId, drvPath: build.drvPath, status: "succeeded", outputs: { out: `${build.drvPath}-out` } });
