import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { LOOK_AGAIN_AFTER_MS, type QueueSource } from "@nimbus/core";
import { evaluationsMayWait, forgetEmpty, noteReceived, seemsEmpty } from "../src/flow/rare-queues.ts";
import { EVALUATION_QUEUE } from "../src/storage/evaluation-queue.ts";

const evaluations: QueueSource = { kind: "evaluate", queue: EVALUATION_QUEUE, rank: 0, rare: true };

// What one warm handler believes of the evaluation queue from its own receives (flow/dispatch.ts,
// flow/hand-over.ts): beliefs that save receives, never decisions.
describe("rare-queue beliefs", () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
    forgetEmpty();
  });
  afterEach(() => mock.timers.reset());

  it("believes an empty receive for 3 s, and a receive that found work not at all", () => {
    assert.equal(seemsEmpty(evaluations), false, "never looked");
    noteReceived(evaluations, 0);
    assert.equal(seemsEmpty(evaluations), true);
    assert.equal(seemsEmpty({ ...evaluations, rare: false }), false, "only rare queues are believed empty");
    mock.timers.tick(3_000);
    assert.equal(seemsEmpty(evaluations), false, "the belief has run out");
    noteReceived(evaluations, 0);
    noteReceived(evaluations, 1);
    assert.equal(seemsEmpty(evaluations), false);
    noteReceived(evaluations, 0);
    forgetEmpty();
    assert.equal(seemsEmpty(evaluations), false, "queued rare work forgets the belief");
  });

  it("asks one dispatch, not every hand-over, to look again when the last look is old", () => {
    assert.equal(evaluationsMayWait(), true, "never looked: a dispatch must look first");
    noteReceived(evaluations, 0);
    assert.equal(evaluationsMayWait(), false, "found empty a moment ago: hand over");
    mock.timers.tick(LOOK_AGAIN_AFTER_MS + 1);
    assert.equal(evaluationsMayWait(), true, "an old look: this result goes through a dispatch");
    assert.equal(evaluationsMayWait(), false, "the results after it are handed over meanwhile");
    assert.equal(seemsEmpty(evaluations), false, "while that dispatch does look");
    mock.timers.tick(LOOK_AGAIN_AFTER_MS + 1);
    assert.equal(evaluationsMayWait(), true, "if it never looked, the next result after another window goes");
    noteReceived(evaluations, 1);
    assert.equal(evaluationsMayWait(), true, "found work: every result leaves the slot to a dispatch");
    assert.equal(evaluationsMayWait(), true);
  });
});
