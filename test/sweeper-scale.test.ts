import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { MAX_RESENDS_PER_SWEEP } from "@nimbus/core";
import { sweep, SHARD } from "@nimbus/service";
import { ChangeMessageVisibilityCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { staleQueued } from "../packages/service/src/storage/derivations.ts";
import { indexShard } from "../packages/service/src/storage/keys.ts";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { drainQueue, eventually, startTestStack, type TestStack } from "./support/stack.ts";

// The sweeper at scale (issue #8, finding 3): it sends again only what its queue's depth says
// was lost (and at most MAX_RESENDS_PER_SWEEP), gives each step a share of its time and goes on
// where a step stopped, sees every quiet job rather than the same oldest hundred, and carries a
// settle with many dependents over several sweeps.
const T = Date.UTC(2026, 0, 1, 12);
const at = (ms: number) => new Date(T + ms);
const MINUTE = 60_000;
const QUEUE_KEY = "riscv64-linux|"; // no agent: what is queued stays queued
const drvPath = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;

describe("the sweeper at scale, on an injected clock", () => {
  // Each part runs on a stack of its own: a budget test must see only its own items.
  let stack: TestStack;
  beforeEach(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
  });
  afterEach(() => stack.cleanup());

  const drain = () => drainQueue(stack, QUEUE_KEY);

  const queued = async (names: string[], queuedAt: Date) => {
    for (const [i, name] of names.entries()) {
      // In the index's shards, as written now, and one in five in its unnumbered partition, as written before shards.
      const queuedShard = i % 5 === 0 ? SHARD.queued : indexShard(SHARD.queued, drvPath(name));
      await stack.setAttributes("Derivations", { drvPath: drvPath(name) }, {
        system: "riscv64-linux", requiredFeatures: [], outputs: { out: `/nix/store/${name}` }, status: "queued", queueKey: QUEUE_KEY,
        attempt: 0, createdAt: queuedAt.toISOString(), updatedAt: queuedAt.toISOString(), queuedShard, queuedAt: queuedAt.toISOString(),
      });
    }
  };

  describe("queued derivations that wait for an agent", () => {
    const names = Array.from({ length: 30 }, (_, i) => `wait-${i}`);
    const waiting = async () => {
      await queued(names, at(0));
      // Their messages were lost once (none was ever sent here): the first sweep sends each.
      assert.equal((await sweep(at(3 * MINUTE))).derivationsResent, 30);
    };

    it("are not sent again while their queue holds a message for each", async () => {
      await waiting();
      for (const minutes of [6, 9, 12]) assert.equal((await sweep(at(minutes * MINUTE))).derivationsResent, 0, `sweep at ${minutes} min`);
      assert.equal(await drain(), 30, "30 messages for 30 derivations, not 120");
    });

    it("are sent again, capped per sweep, once their messages are gone", async () => {
      await waiting();
      await queued(Array.from({ length: 120 }, (_, i) => `lost-${i}`), at(0));
      assert.equal(await drain(), 30);
      assert.equal((await sweep(at(15 * MINUTE))).derivationsResent, MAX_RESENDS_PER_SWEEP, "the cap");
      assert.equal((await sweep(at(18 * MINUTE))).derivationsResent, 150 - MAX_RESENDS_PER_SWEEP, "the rest");
      assert.equal((await sweep(at(21 * MINUTE))).derivationsResent, 0);
      assert.equal(await drain(), 150);
    });
  });

  it("walks the shards of byQueuedAt oldest first, and a walk saved part-way goes on with exactly the rest", async () => {
    const shards = new Set<string>();
    for (let i = 0; i < 12; i++) {
      await queued([`walk-${i}`], at(i * 1000));
      // Two in three in the index's shards, the others in the unnumbered partition of items written before shards.
      const shard = i % 3 === 0 ? SHARD.queued : indexShard(SHARD.queued, drvPath(`walk-${i}`));
      await stack.setAttributes("Derivations", { drvPath: drvPath(`walk-${i}`) }, { queuedShard: shard });
      shards.add(shard);
    }
    assert.ok(shards.size >= 3, `spread over several partitions: ${[...shards].join(", ")}`);
    const all = async (start?: Record<string, string | number>) => {
      const out: { name: string; position: Record<string, string | number> }[] = [];
      for await (const walked of staleQueued(at(MINUTE), start)) out.push({ name: walked.item.drvPath, position: walked.position });
      return out;
    };
    const whole = await all();
    assert.deepEqual(
      whole.map((w) => w.name),
      Array.from({ length: 12 }, (_, i) => drvPath(`walk-${i}`)),
      "every shard, the unnumbered one too, merged oldest first",
    );
    for (const stop of [0, 4, 7, 11]) {
      const rest = await all(whole[stop]!.position);
      assert.deepEqual(
        rest.map((w) => w.name),
        whole.slice(stop + 1).map((w) => w.name),
        `after item ${stop}`,
      );
    }
  });

  it("wakes an idle agent for a queued derivation whose message is on its queue again", async () => {
    // What a dispatch that received the message and died leaves: the message comes back after
    // its visibility timeout, and nothing else will tell the idle agent about it.
    const name = "visible-again";
    await stack.setAttributes("Derivations", { drvPath: drvPath(name) }, {
      system: "x86_64-linux", requiredFeatures: [], outputs: { out: `/nix/store/${name}` }, status: "queued", queueKey: "x86_64-linux|",
      attempt: 0, createdAt: at(0).toISOString(), updatedAt: at(0).toISOString(), queuedShard: SHARD.queued, queuedAt: at(0).toISOString(),
    });
    assert.equal((await sweep(at(3 * MINUTE))).derivationsResent, 1, "its message, lost once, is sent");
    const sqs = new SQSClient({ endpoint: stack.sqsEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" }, useQueueUrlAsEndpoint: false });
    try {
      const queueName = (await stack.scan("BuildQueues")).find((q) => q.queueKey === "x86_64-linux|")!.queueName;
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: String(queueName) }));
      const taken = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, VisibilityTimeout: 600 }));
      assert.equal(taken.Messages?.length, 1, "a receiver holds it (and dies)");
      const { token } = await stack.createToken("idle");
      const agent = await RawAgent.connect(stack.agentSocketUrl, token);
      try {
        assert.equal((await agent.request(hello({ hostname: "idle", concurrentTasks: 1 }))).type, "welcome");
        assert.ok(await stack.handlersIdle(10_000), "the hello's follow-up (a look at the queues) ended");
        assert.equal(agent.messages.some((m) => m.type === "build"), false, "at hello the message was out of sight");
        // Its visibility timeout runs out (made to, rather than waited for).
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: taken.Messages![0]!.ReceiptHandle, VisibilityTimeout: 0 }));
        assert.equal((await sweep(at(6 * MINUTE))).derivationsResent, 0, "its message is on the queue: not sent again");
        await eventually(async () => agent.messages.find((m) => m.type === "build"), "the woken agent's build task");
      } finally {
        agent.close();
      }
    } finally {
      sqs.destroy();
    }
  });

  describe("quiet jobs", () => {
    const job = (id: string, updatedAt: Date, finishable: boolean) => ({ id, updatedAt, finishable });
    const put = async (jobs: ReturnType<typeof job>[]) => {
      for (const [i, { id, updatedAt, finishable }] of jobs.entries()) {
        // In byActivity's shards, as written now, and one in five in its unnumbered partition, as written before shards.
        const activeShard = i % 5 === 0 ? SHARD.activeJob : indexShard(SHARD.activeJob, id);
        await stack.setAttributes("Jobs", { jobId: id }, {
          listKey: SHARD.jobList, activeShard, repository: "acme/quiet", commit: "f".repeat(40), cloneUrl: "file:///x",
          trigger: { event: "push" }, status: "building", createdAt: updatedAt.toISOString(), updatedAt: updatedAt.toISOString(),
          evaluation: { status: "succeeded", taskId: `eval-${id}` },
        });
        // A job with a derivation still building cannot finish yet.
        if (!finishable) await stack.setAttributes("JobDerivations", { jobId: id, drvPath: drvPath(`busy-${id}`) }, { status: "building", jobStatus: `${id}#building` });
      }
    };
    const status = async (id: string) => (await stack.scan("Jobs")).find((j) => j.jobId === id)?.status;

    const busy = () => put(Array.from({ length: 105 }, (_, i) => job(`busy${String(i).padStart(3, "0")}`, at(i), false)));

    it("are all seen, not only the oldest hundred", async () => {
      await busy();
      await put([job("done-after-105", at(200), true)]);
      const report = await sweep(at(30 * MINUTE));
      assert.equal(report.jobsFinished, 1);
      assert.equal(await status("done-after-105"), "succeeded");
    });

    it("are walked a share of the sweep's time at a time, each sweep going on where the last stopped", async () => {
      process.env.NIMBUS_SWEEP_BUDGET_MS = "50";
      try {
        await busy();
        await put([job("later-done", at(300), true)]);
        // A clock that moves 5 ms each time it is read: the quiet-jobs step (the last 20%) has room for a few jobs a sweep.
        let ms = 0;
        const clock = () => (ms += 5);
        const finishedBy: number[] = [];
        for (let sweepNo = 1; sweepNo <= 60 && (await status("later-done")) === "building"; sweepNo++) {
          ms = 0;
          const report = await sweep(at(40 * MINUTE), { clock });
          if (report.jobsFinished) finishedBy.push(sweepNo);
          if ((await status("later-done")) === "building") assert.ok(report.unfinished.includes("quiet-jobs"), `sweep ${sweepNo} stopped early`);
        }
        assert.equal(await status("later-done"), "succeeded", "reached in the end");
        assert.ok(finishedBy[0]! > 3, `it took several sweeps (${finishedBy[0]}), each taking up where the last stopped`);
      } finally {
        delete process.env.NIMBUS_SWEEP_BUDGET_MS;
      }
    });
  });

  describe("a settle with many dependents", () => {
    const input = drvPath("many-input");
    const dependents = Array.from({ length: 250 }, (_, i) => drvPath(`dep-${String(i).padStart(3, "0")}`));

    const graph = async () => {
      await stack.setAttributes("Derivations", { drvPath: input }, {
        system: "riscv64-linux", requiredFeatures: [], outputs: { out: "/nix/store/many" }, status: "succeeded", queueKey: QUEUE_KEY,
        attempt: 0, createdAt: at(0).toISOString(), updatedAt: at(0).toISOString(), propagateShard: SHARD.unpropagated,
      });
      for (const dependent of dependents) {
        await stack.put("Edges", [{ inputDrv: input, dependentDrv: dependent }]);
        await stack.setAttributes("Derivations", { drvPath: dependent }, {
          system: "riscv64-linux", requiredFeatures: [], outputs: { out: `${dependent}-out` }, status: "waiting", queueKey: QUEUE_KEY,
          attempt: 0, createdAt: at(0).toISOString(), updatedAt: at(0).toISOString(), inputDrvs: new Set([input]), pendingInputs: new Set([input]),
        });
      }
    };

    it("tells a page itself; the rest goes on through the FanOut queue where it stopped, and ends out of the index", async () => {
      await graph();
      const queued = async () => (await stack.scan("Derivations")).filter((d) => dependents.includes(String(d.drvPath)) && d.status === "queued");
      const item = async () => (await stack.scan("Derivations")).find((d) => d.drvPath === input)!;
      const report = await sweep(at(50 * MINUTE));
      assert.equal(report.settlesPropagated, 1);
      assert.ok((await queued()).length >= 100, "the sweep told a page itself");
      // A sweep while the queue goes on tells nothing twice (every move is conditional).
      await sweep(at(50 * MINUTE));
      await eventually(async () => ((await item()).propagateShard === undefined ? true : undefined), "the settle to end", 30_000);
      const all = await queued();
      assert.equal(all.length, 250, "every dependent told");
      for (const d of all) assert.equal((d.history as { status: string }[]).filter((h) => h.status === "queued").length, 1, `${String(d.drvPath)} queued once`);
      assert.equal((await item()).propagatedThrough, undefined);
    });
  });
});
