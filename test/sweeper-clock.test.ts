import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sweep, SHARD, type DerivationItem } from "@nimbus/service";
import { drainQueue, startTestStack, type TestStack } from "./support/stack.ts";

// The sweeper's time windows, driven by the clock it is given (`sweep(now)`) against the real
// tables and queues: nothing here waits for the wall clock.
const T = Date.UTC(2026, 0, 1, 12);
const at = (ms: number) => new Date(T + ms);
const REQUEUE_AFTER_MS = 2 * 60_000; // the default NIMBUS_REQUEUE_AFTER_MS

const queued = (name: string, extra: Partial<DerivationItem>): DerivationItem => ({
  drvPath: `/nix/store/${name.padEnd(32, "0")}-${name}.drv`,
  system: "x86_64-linux",
  requiredFeatures: [],
  outputs: { out: `/nix/store/${name.padEnd(32, "0")}-${name}` },
  status: "queued",
  queueKey: "x86_64-linux|",
  attempt: 1,
  createdAt: at(0).toISOString(),
  updatedAt: at(0).toISOString(),
  queuedShard: SHARD.queued,
  queuedAt: at(0).toISOString(),
  ...extra,
});

describe("the sweeper's windows, on an injected clock", () => {
  let stack: TestStack;
  const retry = queued("retry", { dueShard: SHARD.due, dueAt: at(30_000).toISOString() });
  const stale = queued("stale", {});

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    for (const drv of [retry, stale]) {
      const { drvPath, ...rest } = drv;
      await stack.setAttributes("Derivations", { drvPath }, rest);
    }
  });
  after(() => stack.cleanup());

  const item = async (drv: DerivationItem) => (await stack.scan("Derivations")).find((d) => d.drvPath === drv.drvPath)!;

  it("leaves a retry alone until it is due, then sends it once", async () => {
    assert.equal((await sweep(at(29_999))).derivationsResent, 0, "not due yet");
    assert.equal((await item(retry)).dueAt, retry.dueAt);
    assert.equal((await sweep(at(30_000))).derivationsResent, 1, "due now");
    const sent = await item(retry);
    assert.equal(sent.dueShard, undefined, "out of the byDueAt index");
    assert.equal(sent.queuedAt, at(30_000).toISOString());
    assert.equal((await sweep(at(30_001))).derivationsResent, 0, "sent once");
  });

  it("re-sends a queued derivation only after it sat for the re-send window", async () => {
    // The retry's message was read by an agent meanwhile: the queue holds none for `stale` (it was lost).
    await drainQueue(stack, stale.queueKey);
    assert.equal((await item(stale)).queuedAt, at(0).toISOString());
    assert.equal((await sweep(at(REQUEUE_AFTER_MS))).derivationsResent, 0, "not older than the window yet");
    assert.equal((await sweep(at(REQUEUE_AFTER_MS + 1))).derivationsResent, 1);
    assert.equal((await item(stale)).queuedAt, at(REQUEUE_AFTER_MS + 1).toISOString());
  });
});
