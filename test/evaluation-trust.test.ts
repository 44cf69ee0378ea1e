import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import type { EvaluateTask } from "@nimbus/protocol";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// What an evaluation may assert about a derivation another job's evaluation registered
// (issue #8, finding 12; docs/reliability.md, "What an evaluator may assert"): a part event extends
// only a derivation its own job registered — another job's part waits while that job still
// evaluates, and takes the derivation over once it is done with parts missing; system,
// features and outputs (fixed by the .drv path) must agree with the registration.
const path = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;
const SPLIT = path("split");
const INPUT = path("input");
const EVIL = path("evil");
const SHARED = path("shared");
// For a system no agent here builds: everything stays waiting or queued, as registered.
const derivation = (drvPath: string, inputDrvs: string[] = [], extra: Record<string, unknown> = {}) => ({
  kind: "derivation",
  drvPath,
  system: "riscv64-linux",
  requiredFeatures: [],
  inputDrvs,
  outputs: { out: drvPath.replace(/\.drv$/, "-out") },
  ...extra,
});

describe("what an evaluation may assert about another job's derivation", () => {
  let stack: TestStack;
  let first: RawAgent;
  let second: RawAgent;
  let firstTask: EvaluateTask;
  let secondTask: EvaluateTask;
  let firstJob: string;
  let secondJob: string;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("trust");
    const evaluating = async (hostname: string, commit: string) => {
      const agent = await RawAgent.connect(stack.agentSocketUrl, token);
      assert.equal((await agent.request(hello({ hostname, concurrentTasks: 1 }))).type, "welcome");
      const { body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: `acme/${hostname}`, commit });
      const task = (await eventually(async () => agent.messages.find((m) => m.type === "evaluate"), `${hostname}'s evaluation`)) as EvaluateTask;
      return { agent, task, jobId: body.jobId as string };
    };
    ({ agent: first, task: firstTask, jobId: firstJob } = await evaluating("first", "1".repeat(40)));
    ({ agent: second, task: secondTask, jobId: secondJob } = await evaluating("second", "2".repeat(40)));
  });
  after(async () => {
    first?.close();
    second?.close();
    await stack.cleanup();
  });

  const item = async (drvPath: string) => (await stack.scan("Derivations")).find((d) => d.drvPath === drvPath)!;
  const batch = (agent: RawAgent, task: EvaluateTask, seq: number, events: unknown[]) => agent.request({ type: "evaluation-events", taskId: task.taskId, seq, events });

  it("does not let another job's part add inputs to a split derivation while its registrar evaluates", async () => {
    assert.equal((await batch(first, firstTask, 0, [derivation(INPUT), derivation(SPLIT, [INPUT], { part: { index: 0, count: 2 } })])).type, "ack");
    const reply = await batch(second, secondTask, 0, [derivation(EVIL), derivation(SPLIT, [EVIL], { part: { index: 1, count: 2 } })]);
    assert.equal(reply.type === "error" && reply.code, "retry-later", JSON.stringify(reply));
    const split = await item(SPLIT);
    assert.equal(split.status, "waiting");
    assert.deepEqual(await inputsOf(SPLIT), { inputs: [INPUT], pending: ["#part/1", INPUT] }, "no input of the other job's, its part still awaited");
  });

  it("lets the registrar complete it, and then drops the other job's part", async () => {
    assert.equal((await batch(first, firstTask, 1, [derivation(SPLIT, [path("input2")], { part: { index: 1, count: 2 } }), derivation(path("input2"))])).type, "ack");
    assert.deepEqual(await inputsOf(SPLIT), { inputs: [INPUT, path("input2")].sort(), pending: [INPUT, path("input2")].sort() });
    assert.deepEqual(await batch(second, secondTask, 0, [derivation(EVIL), derivation(SPLIT, [EVIL], { part: { index: 1, count: 2 } })]), { type: "ack", taskId: secondTask.taskId, seq: 0 });
    assert.deepEqual(await inputsOf(SPLIT), { inputs: [INPUT, path("input2")].sort(), pending: [INPUT, path("input2")].sort() }, "nothing of the other job's");
  });

  it("refuses an evaluation that reports other fields than the registration, and keeps the registration", async () => {
    assert.equal((await batch(first, firstTask, 2, [derivation(SHARED)])).type, "ack");
    const lying = { ...derivation(SHARED), system: "x86_64-linux", outputs: { out: "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-evil" } };
    assert.equal((await batch(second, secondTask, 1, [lying, { kind: "attribute", path: ["shared"], drvPath: SHARED, attributeType: "regular", needsBuild: true }])).type, "ack");
    assert.equal((await item(SHARED)).system, "riscv64-linux", "the registration stands");
    assert.equal((await second.request({ type: "evaluation-done", taskId: secondTask.taskId, batches: 2, status: "succeeded" })).type, "result-ack");
    const view = (await stack.api("GET", `/api/jobs/${secondJob}`)).body;
    const conflict = view.attributes.find((a: { error?: string }) => a.error);
    assert.match(conflict?.error ?? "", new RegExp(`${SHARED.replace(/[.]/g, "\\.")} was registered by another evaluation with other fields than this one reports: system x86_64-linux \\(registered: riscv64-linux\\); outputs`));
    // An attribute error: the job fails, saying why, once what it still waits for has settled.
    assert.equal(view.attributes.filter((a: { error?: string }) => a.error).length, 1);
  });

  it("takes a built derivation's outputs from its builder, and does not hold them against a later evaluation", async () => {
    const built = path("built");
    assert.equal((await batch(first, firstTask, 4, [derivation(built)])).type, "ack");
    // Built meanwhile: the builder reported the outputs it made (a content-addressed derivation's are only known then).
    await stack.setAttributes("Derivations", { drvPath: built }, { status: "succeeded", outputs: { out: "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-built" } });
    const { body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/fourth", commit: "4".repeat(40) });
    const [taker, fourth] = await eventually(async () => {
      for (const agent of [first, second]) {
        const task = agent.messages.find((m): m is EvaluateTask => m.type === "evaluate" && m.jobId === body.jobId);
        if (task) return [agent, task] as const;
      }
      return undefined;
    }, "the fourth evaluation");
    assert.equal((await batch(taker, fourth, 0, [derivation(built), { kind: "attribute", path: ["built"], drvPath: built, attributeType: "regular", needsBuild: true }])).type, "ack");
    assert.equal((await taker.request({ type: "evaluation-done", taskId: fourth.taskId, batches: 1, status: "succeeded" })).type, "result-ack");
    const view = await eventually(async () => {
      const job = (await stack.api("GET", `/api/jobs/${body.jobId}`)).body;
      return job.status === "succeeded" || job.status === "failed" ? job : undefined;
    }, "the fourth job to end");
    assert.equal(view.status, "succeeded", JSON.stringify(view.attributes));
    assert.deepEqual(view.counts, { succeeded: 1 });
  });

  it("lets another job take over a split derivation whose registrar's evaluation ended with parts missing", async () => {
    const orphan = path("orphan");
    assert.equal((await batch(first, firstTask, 3, [derivation(orphan, [INPUT], { part: { index: 0, count: 3 } })])).type, "ack");
    // The first job's evaluation ends before its other parts: they will never come from it.
    assert.equal((await first.request({ type: "evaluation-done", taskId: firstTask.taskId, batches: 4, status: "failed", error: "gave up" })).type, "result-ack");
    const { body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/third", commit: "3".repeat(40) });
    // Whichever agent has a free slot takes it.
    const [taker, third] = await eventually(async () => {
      for (const agent of [first, second]) {
        const task = agent.messages.find((m): m is EvaluateTask => m.type === "evaluate" && m.jobId === body.jobId);
        if (task) return [agent, task] as const;
      }
      return undefined;
    }, "the third evaluation");
    assert.equal((await batch(taker, third, 0, [derivation(orphan, [EVIL], { part: { index: 0, count: 2 } }), derivation(EVIL)])).type, "ack");
    assert.equal((await batch(taker, third, 1, [derivation(orphan, [path("input3")], { part: { index: 1, count: 2 } }), derivation(path("input3"))])).type, "ack");
    assert.deepEqual(await inputsOf(orphan), { inputs: [EVIL, path("input3")].sort(), pending: [EVIL, path("input3")].sort() }, "the taking job's parts, and only them");
    assert.equal((await item(orphan)).registeredBy, body.jobId);
    assert.equal((await stack.api("GET", `/api/jobs/${firstJob}`)).body.status, "failed");
  });

  /** A derivation's inputs (its DerivationInputs rows) and what it still waits for (its PendingInputs rows and the parts still to come), as stored. */
  async function inputsOf(drvPath: string): Promise<{ inputs: string[]; pending: string[] }> {
    const raw = await stack.getItem("Derivations", { drvPath });
    const rows = async (table: "DerivationInputs" | "PendingInputs") => (await stack.scan(table)).filter((r) => r.drvPath === drvPath).map((r) => String(r.inputDrv));
    const parts = [...((raw?.pendingParts as Set<string> | undefined) ?? [])];
    return { inputs: (await rows("DerivationInputs")).sort(), pending: [...(await rows("PendingInputs")), ...parts].sort() };
  }
});
