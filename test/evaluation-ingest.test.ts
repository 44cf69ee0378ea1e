import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import { EDGE_GROUP_BYTES, EDGE_GROUP_DEPENDENTS, MAX_BATCHES_AHEAD } from "@nimbus/core";
import type { EvaluateTask, ServiceMessage } from "@nimbus/protocol";
import type { JobItem } from "../packages/service/src/storage/items.ts";
import { batchesSeenOf } from "../packages/service/src/storage/jobs.ts";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// Ingest of an evaluation (issue #11, item 2; docs/architecture.md, "push → job"): a batch's
// derivations are registered together, the job's record of the batches it has seen stays the
// same size however many batches come, and a derivation with nothing to wait for is built
// while the evaluation is still sending.
const path = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;
const derivation = (drvPath: string, inputDrvs: string[] = [], system = "riscv64-linux") => ({
  kind: "derivation",
  drvPath,
  system,
  requiredFeatures: [],
  inputDrvs,
  outputs: { out: drvPath.replace(/\.drv$/, "-out") },
});
const attribute = (name: string, drvPath: string) => ({ kind: "attribute", path: [name], drvPath, attributeType: "regular", needsBuild: true });
/** An item's size as stored, near enough: its JSON with sets as lists. */
const sizeOf = (item: unknown) => JSON.stringify(item, (_key, value: unknown) => (value instanceof Set ? [...value] : value)).length;

describe("evaluation ingest", () => {
  let stack: TestStack;
  let token: string;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    ({ token } = await stack.createToken("ingest"));
  });
  after(async () => {
    await stack.cleanup();
  });

  const evaluating = async (hostname: string, commit: string, systems = ["x86_64-linux"]) => {
    const agent = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await agent.request(hello({ hostname, concurrentTasks: 2, systems }))).type, "welcome");
    const { body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: `acme/${hostname}`, commit });
    const task = (await eventually(async () => agent.messages.find((m) => m.type === "evaluate"), `${hostname}'s evaluation`)) as EvaluateTask;
    return { agent, task, jobId: body.jobId as string };
  };
  const answerTo = (agent: RawAgent, taskId: string, seq: number, from: number) =>
    eventually(
      async () => agent.messages.slice(from).find((m: ServiceMessage) => (m.type === "ack" && m.seq === seq) || (m.type === "error" && m.taskId === taskId && m.message.startsWith(`batch ${seq}:`))),
      `the answer to batch ${seq}`,
      60_000,
    );

  it("registers a batch's derivations with their edges, input rows, job rows and attributes", async () => {
    const { agent, task, jobId } = await evaluating("wide", "1".repeat(40), ["aarch64-darwin"]);
    try {
      // 60 derivations in 3 layers (a frame holds at most 32 KB), each above the first needing 3 of the layer below; one named twice.
      const layer = (l: number) => Array.from({ length: 20 }, (_, i) => path(`l${l}n${i}`));
      const events = [
        ...layer(0).map((d) => derivation(d)),
        ...layer(1).map((d, i) => derivation(d, [layer(0)[i]!, layer(0)[(i + 1) % 20]!, layer(0)[(i + 2) % 20]!])),
        ...layer(2).map((d, i) => derivation(d, [layer(1)[i]!, layer(1)[(i + 7) % 20]!, layer(1)[i]!])),
        derivation(layer(2)[0]!, [layer(1)[0]!, layer(1)[7]!]),
        ...layer(2).map((d, i) => attribute(`top${i}`, d)),
        attribute("top0", layer(2)[0]!),
      ];
      const from = agent.messages.length;
      agent.send({ type: "evaluation-events", taskId: task.taskId, seq: 0, events });
      assert.deepEqual(await answerTo(agent, task.taskId, 0, from), { type: "ack", taskId: task.taskId, seq: 0 });
      const all = [...layer(0), ...layer(1), ...layer(2)];
      const derivations = new Map((await stack.scan("Derivations")).map((d) => [d.drvPath as string, d]));
      for (const d of layer(0)) assert.equal(derivations.get(d)?.status, "queued", `${d}: nothing to wait for, queued`);
      for (const d of [...layer(1), ...layer(2)]) assert.equal(derivations.get(d)?.status, "waiting", `${d} waits for its inputs`);
      const edgeRows = (await stack.scan("Edges")).filter((e) => all.includes(e.inputDrv as string));
      const edges = new Set(edgeRows.flatMap((e) => ((e.dependents as string[] | undefined) ?? [e.dependentDrv as string]).map((d) => `${e.inputDrv} -> ${d}`)));
      assert.equal(edges.size, 100, "one edge per distinct input (3 each in layer 1, 2 in layer 2)");
      // A row per input with the batch's dependents of it (storage/derivation-edges.ts), not one per edge.
      assert.ok(edgeRows.length <= 42, `${edgeRows.length} rows for 100 edges`);
      // A few inputs each: on the derivation's own item, no rows (storage/inputs-on-item.ts).
      const sorted = (set: unknown) => [...((set as Set<string> | undefined) ?? [])].sort();
      for (const event of events.flatMap((e) => ("inputDrvs" in e && e.inputDrvs.length > 0 ? [e] : []))) {
        const item = await stack.getItem("Derivations", { drvPath: event.drvPath }); // sets as Sets
        const inputs = [...new Set(event.inputDrvs)].sort();
        assert.equal(item?.inputsOnItem, true, `${event.drvPath} keeps its inputs on its item`);
        assert.deepEqual(sorted(item?.inputs), event.drvPath === layer(2)[0] ? [layer(1)[0], layer(1)[7]].sort() : inputs, "the registration that created it listed them");
        assert.deepEqual(sorted(item?.pendingInputs), sorted(item?.inputs), "every input without outputs is pending");
      }
      assert.equal((await stack.scan("PendingInputs")).filter((r) => all.includes(r.drvPath as string)).length, 0, "no pending input rows");
      assert.equal((await stack.scan("DerivationInputs")).filter((r) => all.includes(r.drvPath as string)).length, 0, "no input rows");
      const rows = (await stack.scan("JobDerivations")).filter((r) => r.jobId === jobId);
      assert.deepEqual(
        rows.map((r) => [r.drvPath, r.status]).sort(),
        all.map((d) => [d, layer(0).includes(d) ? "queued" : "waiting"]).sort(),
        "the job's row of each, with the status it has now",
      );
      assert.equal((await stack.scan("JobAttributes")).filter((a) => a.jobId === jobId).length, 20, "an attribute named twice is one row");
      const job = await stack.getItem("Jobs", { jobId });
      assert.deepEqual([job?.count_queued, job?.count_waiting], [20, 40], "the job's counts moved with its rows");
    } finally {
      agent.close();
    }
  });

  it("keeps the job's record of seen batches the same size however many batches come, out of order, twice, or too far ahead", async () => {
    const { agent, task, jobId } = await evaluating("many", "2".repeat(40), ["aarch64-darwin"]);
    try {
      const batch = (seq: number) => ({ type: "evaluation-events", taskId: task.taskId, seq, events: [attribute(`a${seq}`, path(`many${seq}`))] });
      const jobSize = async () => sizeOf(await stack.getItem("Jobs", { jobId }));
      // Too far past the first missing batch: refused, not recorded.
      const from = agent.messages.length;
      agent.send(batch(MAX_BATCHES_AHEAD));
      const refused = await answerTo(agent, task.taskId, MAX_BATCHES_AHEAD, from);
      assert.equal(refused.type === "error" && refused.code, "retry-later", JSON.stringify(refused));
      assert.equal((await stack.scan("JobAttributes")).filter((a) => a.jobId === jobId).length, 0, "nothing of it recorded");

      const BATCHES = 160;
      const sizes: number[] = [];
      for (let group = 0; group < BATCHES; group += 4) {
        // As an agent with 4 batches unacknowledged may have them arrive: backwards.
        const seqs = [group + 3, group + 2, group + 1, group];
        const start = agent.messages.length;
        for (const seq of seqs) agent.send(batch(seq));
        for (const seq of seqs) assert.equal((await answerTo(agent, task.taskId, seq, start)).type, "ack", `batch ${seq} acknowledged`);
        if (group % 40 === 0 || group + 4 === BATCHES) sizes.push(await jobSize());
      }
      // A batch sent again (its ack was lost) is acknowledged and recorded once.
      const again = agent.messages.length;
      agent.send(batch(17));
      assert.equal((await answerTo(agent, task.taskId, 17, again)).type, "ack");
      const job = await stack.getItem("Jobs", { jobId });
      const evaluation = job?.evaluation as Record<string, unknown>;
      const seen = batchesSeenOf(evaluation as JobItem["evaluation"]);
      assert.deepEqual([seen.below, [...seen.above]], [BATCHES, []], "every batch in, nothing past a gap");
      const listed = (evaluation.batchesAbove as Set<number> | undefined)?.size ?? 0;
      assert.ok(listed < 16, `at most a few notes not folded into batchesBelow yet: ${listed}`);
      assert.equal(evaluation.batchesSeen, undefined);
      // Up to 15 notes wait for a fold (a list of up to 15 numbers, about 80 bytes as JSON): the size stays within that, whatever the number of batches.
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 100, `the job item's size does not grow with its batches: ${sizes.join(", ")} bytes`);
      assert.ok(Math.max(...sizes) < 4096, `${Math.max(...sizes)} bytes`);
      assert.equal((await stack.scan("JobAttributes")).filter((a) => a.jobId === jobId).length, BATCHES);

      const done = agent.messages.length;
      agent.send({ type: "evaluation-done", taskId: task.taskId, batches: BATCHES, status: "succeeded" });
      await eventually(async () => agent.messages.slice(done).find((m) => m.type === "result-ack"), "the evaluation's result-ack");
      await eventually(async () => ((await stack.getItem("Jobs", { jobId }))?.status !== "evaluating" ? true : undefined), "the job to move on once every batch is in");
      const ended = await stack.getItem("Jobs", { jobId });
      assert.equal((ended?.evaluation as Record<string, unknown>).status, "succeeded");
    } finally {
      agent.close();
    }
  });

  it("keeps few inputs on a derivation's item and more as rows, and no item grows with a hub's dependents", async () => {
    const { agent, task } = await evaluating("bounds", "4".repeat(40), ["aarch64-darwin"]);
    try {
      const hub = path("hub");
      const inputs = (prefix: string, n: number, length = 0) =>
        Array.from({ length: n }, (_, i) => `/nix/store/${`${prefix}${i}`.padEnd(32, "0").slice(0, 32)}-${"x".repeat(length)}${prefix}${i}.drv`);
      const few = path("few");
      const many = path("many");
      const long = path("long");
      const batches = [
        [derivation(hub), derivation(few, [hub, ...inputs("f", 63)]), derivation(many, [hub, ...inputs("m", 64)])],
        // 20 inputs of about 1,000 bytes each: few, but too long for the item.
        [derivation(long, [hub, ...inputs("l", 19, 900)])],
        // The hub's dependents come in batch after batch; one batch has more than a row of them.
        ...Array.from({ length: 4 }, (_, b) => Array.from({ length: b === 3 ? EDGE_GROUP_DEPENDENTS + 5 : 60 }, (_, i) => derivation(path(`dep${b}x${i}`), [hub]))),
      ];
      const hubSizes: number[] = [];
      for (const [seq, events] of batches.entries()) {
        const from = agent.messages.length;
        agent.send({ type: "evaluation-events", taskId: task.taskId, seq, events });
        assert.equal((await answerTo(agent, task.taskId, seq, from)).type, "ack", `batch ${seq}`);
        hubSizes.push(sizeOf(await stack.getItem("Derivations", { drvPath: hub })));
      }
      const rows = async (table: "PendingInputs" | "DerivationInputs", drvPath: string) => (await stack.scan(table)).filter((r) => r.drvPath === drvPath).length;
      const fewItem = await stack.getItem("Derivations", { drvPath: few });
      assert.equal((fewItem?.inputs as Set<string>).size, 64, "64 inputs: on the item");
      assert.equal((fewItem?.pendingInputs as Set<string>).size, 64);
      assert.deepEqual([await rows("PendingInputs", few), await rows("DerivationInputs", few)], [0, 0]);
      for (const [drvPath, count] of [[many, 65], [long, 20]] as const) {
        const item = await stack.getItem("Derivations", { drvPath });
        assert.equal(item?.inputsOnItem, undefined, `${drvPath}: too many or too long for the item`);
        assert.equal(item?.inputs, undefined);
        assert.deepEqual([await rows("PendingInputs", drvPath), await rows("DerivationInputs", drvPath)], [count, count], "one row each instead");
        assert.ok(sizeOf(item) < 4096, `${drvPath}: ${sizeOf(item)} bytes`);
      }
      assert.ok(sizeOf(fewItem) < 2 * 16_000 + 4096, `the item with its inputs on it: ${sizeOf(fewItem)} bytes, far from 400 KB`);
      assert.equal(new Set(hubSizes.slice(1)).size, 1, `the hub's item stays the same size as its dependents come: ${hubSizes.join(", ")} bytes`);
      const hubRows = (await stack.scan("Edges")).filter((e) => e.inputDrv === hub);
      const hubDependents = hubRows.flatMap((e) => (e.dependents as string[] | undefined) ?? [e.dependentDrv as string]);
      assert.equal(new Set(hubDependents).size, 3 + 3 * 60 + EDGE_GROUP_DEPENDENTS + 5, "its dependents are in Edges rows");
      // A row per batch, none holding more than its bound, whatever the batch (storage/derivation-edges.ts).
      assert.deepEqual(hubRows.map((e) => ((e.dependents as string[] | undefined) ?? [e.dependentDrv]).length).sort((a, b) => b - a), [EDGE_GROUP_DEPENDENTS, 60, 60, 60, 5, 2, 1]);
      for (const row of hubRows) assert.ok(sizeOf(row) < EDGE_GROUP_BYTES + 4096, `an Edges row of ${sizeOf(row)} bytes`);
    } finally {
      agent.close();
    }
  });

  it("does not keep a new derivation waiting for an input already built, whether several new ones of the batch name it or one", async () => {
    const { agent, task } = await evaluating("built", "5".repeat(40), ["aarch64-darwin"]);
    try {
      // Built by earlier jobs: a toolchain several new derivations share, and one input (a source) only one names.
      const toolchain = path("toolchain");
      const source = path("source");
      const at = new Date().toISOString();
      for (const drvPath of [toolchain, source]) {
        await stack.setAttributes("Derivations", { drvPath }, {
          system: "riscv64-linux", requiredFeatures: [], outputs: { out: `${drvPath}-out` }, status: "succeeded", version: 3,
          queueKey: "riscv64-linux|", attempt: 0, createdAt: at, updatedAt: at,
        });
      }
      const [a, b, c, unbuilt] = [path("uses-toolchain-a"), path("uses-toolchain-b"), path("uses-source"), path("unbuilt")];
      const from = agent.messages.length;
      agent.send({
        type: "evaluation-events",
        taskId: task.taskId,
        seq: 0,
        events: [derivation(a, [toolchain]), derivation(b, [toolchain, unbuilt]), derivation(c, [source]), derivation(unbuilt)],
      });
      assert.equal((await answerTo(agent, task.taskId, 0, from)).type, "ack");
      const item = (drvPath: string) => stack.getItem("Derivations", { drvPath });
      for (const ready of [a, c]) {
        assert.equal((await item(ready))?.status, "queued", `${ready}: its only input is built`);
        assert.equal(((await item(ready))?.pendingInputs as Set<string> | undefined)?.size ?? 0, 0, `${ready} waits for nothing`);
      }
      assert.equal((await item(b))?.status, "waiting");
      assert.deepEqual([...((await item(b))?.pendingInputs as Set<string>)], [unbuilt], "it waits for the unbuilt input only");
    } finally {
      agent.close();
    }
  });

  it("sends a derivation with nothing to wait for to its builder while the evaluation is still running", async () => {
    const { agent, task, jobId } = await evaluating("early", "3".repeat(40));
    try {
      const early = path("early");
      const later = path("later");
      const from = agent.messages.length;
      agent.send({ type: "evaluation-events", taskId: task.taskId, seq: 0, events: [derivation(early, [], "x86_64-linux")] });
      assert.equal((await answerTo(agent, task.taskId, 0, from)).type, "ack");
      // No evaluation-done yet: the job is still evaluating, and its first build is already out.
      const build = await eventually(async () => agent.messages.find((m) => m.type === "build"), "the first build, before evaluation-done");
      assert.equal(build.type === "build" && build.drvPath, early);
      assert.equal((await stack.getItem("Jobs", { jobId }))?.status, "evaluating");
      const next = agent.messages.length;
      agent.send({ type: "evaluation-events", taskId: task.taskId, seq: 1, events: [derivation(later, [early], "x86_64-linux")] });
      assert.equal((await answerTo(agent, task.taskId, 1, next)).type, "ack");
      assert.equal((await stack.getItem("Derivations", { drvPath: later }))?.status, "waiting");
    } finally {
      agent.close();
    }
  });
});
