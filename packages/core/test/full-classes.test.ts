import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ASK_AGAIN_MARGIN_MS, askAgainAfter, believedFull, hasFreeSlot } from "../src/full-classes.ts";

describe("full classes", () => {
  it("believes a class full only within the trust window after the look that found it full", () => {
    assert.equal(believedFull(undefined, 1_000, 500), false);
    assert.equal(believedFull(1_000, 1_000, 500), true);
    assert.equal(believedFull(1_000, 1_499, 500), true);
    assert.equal(believedFull(1_000, 1_500, 500), false);
    // A clock that went back proves nothing about the look.
    assert.equal(believedFull(1_000, 999, 500), false);
    // No trust: every wake asks the index.
    assert.equal(believedFull(1_000, 1_000, 0), false);
  });

  it("tells agents to ask again only after any belief formed before their slot came free has ended", () => {
    assert.equal(askAgainAfter(500), 500 + ASK_AGAIN_MARGIN_MS);
    assert.ok(askAgainAfter(500)! > 500);
    assert.equal(askAgainAfter(0), undefined);
  });

  it("sees a free slot when fewer tasks run than the agent takes", () => {
    assert.equal(hasFreeSlot({ runningTasks: 1, agent: { concurrentTasks: 2 } }), true);
    assert.equal(hasFreeSlot({ runningTasks: 2, agent: { concurrentTasks: 2 } }), false);
  });
});
