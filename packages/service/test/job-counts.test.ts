/** A job's kept counts as the view reads them: builds under way kept with the queued ones, told apart by a count of rows. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countsExact, keptCounts, splitUnderWay } from "../src/storage/job-counts.ts";
import type { JobItem } from "../src/storage/items.ts";

const job = (fields: Partial<JobItem>) => ({ countsKept: true, ...fields }) as JobItem;

describe("kept counts", () => {
  it("hold a running job's builds under way with its queued ones, and add in a count_building its moves were counted in before", () => {
    assert.deepEqual(keptCounts(job({ count_queued: 3, count_waiting: 2 })), { queued: 3, waiting: 2 });
    assert.deepEqual(keptCounts(job({ count_queued: -1, count_building: 2, count_succeeded: 1 })), { queued: 1, succeeded: 1 });
    assert.deepEqual(keptCounts(job({ count_queued: 0, count_building: 0, count_succeeded: 4 })), { succeeded: 4 });
  });

  it("are exact per status once the job ended, and not while its cancellation still moves them", () => {
    const ended = { finishedAt: "2026-12-02T00:00:00.000Z" };
    assert.ok(countsExact(ended));
    assert.ok(!countsExact({ ...ended, cancelling: true }));
    assert.deepEqual(keptCounts(job({ ...ended, count_building: 1, count_failed: 2 })), { building: 1, failed: 2 });
    assert.deepEqual(keptCounts(job({ ...ended, cancelling: true, count_queued: 1, count_building: 1 })), { queued: 2 });
  });

  it("are undefined for a job made before it kept them", () => {
    assert.equal(keptCounts({ count_queued: 1 } as JobItem), undefined);
  });

  it("tell builds under way from the queued and waiting ones their rows count them as, never below zero", () => {
    assert.deepEqual(splitUnderWay({ queued: 5, succeeded: 1 }, ["queued", "queued"]), { queued: 3, building: 2, succeeded: 1 });
    assert.deepEqual(splitUnderWay({ queued: 2 }, ["queued", "queued"]), { building: 2 });
    // A build handed over: its row still says waiting.
    assert.deepEqual(splitUnderWay({ waiting: 4, queued: 1 }, ["waiting", "queued"]), { waiting: 3, building: 2 });
    // A row written as building before a build's start stopped moving rows: counted as queued.
    assert.deepEqual(splitUnderWay({ queued: 1 }, ["building"]), { building: 1 });
    // An index a little behind the counts (a build settled since): within what they hold.
    assert.deepEqual(splitUnderWay({ queued: 1 }, ["queued", "queued", "queued"]), { building: 1 });
    assert.deepEqual(splitUnderWay({ queued: 2 }, []), { queued: 2 });
    assert.deepEqual(splitUnderWay({ waiting: 4 }, ["queued"]), { waiting: 4 });
  });
});
