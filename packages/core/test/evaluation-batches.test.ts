import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { batchesSeenCount, compactBatches, isBatchSeen, MAX_BATCHES_AHEAD, NO_BATCHES_SEEN, noteBatch, type BatchesSeen } from "../src/evaluation-batches.ts";

/** Notes every batch in `order`, as the service would one at a time; the state after. */
function noteAll(order: readonly number[], from: BatchesSeen = NO_BATCHES_SEEN): BatchesSeen {
  let seen = from;
  for (const seq of order) {
    const note = noteBatch(seen, seq);
    if (note.type === "note") seen = note.seen;
  }
  return seen;
}

describe("evaluation batches seen: bounded whatever the number of batches", () => {
  it("batches in order leave nothing listed, however many", () => {
    const seen = noteAll(Array.from({ length: 100_000 }, (_, i) => i));
    assert.deepEqual(seen, { below: 100_000, above: new Set() });
    assert.equal(batchesSeenCount(seen), 100_000);
  });

  it("batches out of order within the agent's window list only those past the gap", () => {
    // A window of 4 in flight: each group of 4 arrives backwards.
    const order = Array.from({ length: 10_000 }, (_, i) => i - (i % 4) + (3 - (i % 4)));
    let seen = NO_BATCHES_SEEN;
    let mostListed = 0;
    for (const seq of order) {
      const note = noteBatch(seen, seq);
      assert.equal(note.type, "note", `batch ${seq} is recorded`);
      if (note.type === "note") seen = note.seen;
      mostListed = Math.max(mostListed, seen.above.size);
    }
    assert.deepEqual(seen, { below: 10_000, above: new Set() });
    assert.equal(mostListed, 3, "never more than the window's others listed");
  });

  it("a batch seen before is seen, below the gap or past it", () => {
    const seen = noteAll([0, 1, 2, 5, 7]);
    assert.deepEqual(seen, { below: 3, above: new Set([5, 7]) });
    for (const seq of [0, 2, 5, 7]) assert.deepEqual(noteBatch(seen, seq), { type: "seen" });
    for (const seq of [3, 4, 6, 8]) assert.equal(isBatchSeen(seen, seq), false);
    assert.equal(batchesSeenCount(seen), 5);
  });

  it("filling the gap moves `below` past everything listed after it", () => {
    const note = noteBatch({ below: 3, above: new Set([4, 5, 7]) }, 3);
    assert.deepEqual(note, { type: "note", seen: { below: 6, above: new Set([7]) } });
  });

  it("a batch too far past the gap is refused, so the list can never pass MAX_BATCHES_AHEAD", () => {
    const seen = noteAll([0, 2]);
    assert.deepEqual(noteBatch(seen, 1 + MAX_BATCHES_AHEAD), { type: "too-far", lowestMissing: 1 });
    assert.equal(noteBatch(seen, MAX_BATCHES_AHEAD).type, "note", "just inside the bound");
    // A hostile agent numbering every batch it can past a gap fills the list at most.
    const hostile = noteAll(Array.from({ length: 1_000 }, (_, i) => 1 + i * 7));
    assert.ok(hostile.above.size < MAX_BATCHES_AHEAD, `${hostile.above.size} listed`);
    assert.equal(hostile.below, 0);
  });

  it("compacting an older stored set (every batch number listed) gives the same state", () => {
    assert.deepEqual(compactBatches(0, [0, 1, 2, 3, 9, 5]), { below: 4, above: new Set([5, 9]) });
    assert.deepEqual(compactBatches(4, [1, 2, 4]), { below: 5, above: new Set() });
  });
});
