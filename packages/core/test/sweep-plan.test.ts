import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  evaluationHandBack,
  MAX_RESENDS_PER_SWEEP,
  planResends,
  quietJobAction,
  SETTLE_SHOWS_WITHIN_MS,
  settledLookFrom,
  SWEEP_SHARES,
  SWEEP_STEPS,
  sweepDeadlines,
  type QuietJob,
  type StaleWork,
} from "../src/sweep-plan.ts";

const work = (id: string, queue: string, second: number): StaleWork => ({ id, queue, since: `2026-01-01T12:00:${String(second).padStart(2, "0")}.000Z` });

describe("planResends: only what a queue's depth says is missing, oldest first, capped", () => {
  const a1 = work("a1", "A", 1);
  const a2 = work("a2", "A", 2);
  const a3 = work("a3", "A", 3);
  const b1 = work("b1", "B", 0);
  const cases: Array<[string, StaleWork[], Record<string, number>, number, string[]]> = [
    ["nothing stale", [], { A: 0 }, 100, []],
    ["the queue holds a message for each: none lost", [a1, a2], { A: 2 }, 100, []],
    ["more messages than stale work (fresh work waits too): none", [a1], { A: 30 }, 100, []],
    ["an empty queue: every stale one was lost", [a2, a1], { A: 0 }, 100, ["a1", "a2"]],
    ["one message short: the oldest goes again", [a3, a1, a2], { A: 2 }, 100, ["a1"]],
    ["a queue never seen counts as empty", [b1], {}, 100, ["b1"]],
    ["queues apart: each by its own depth", [a1, a2, b1], { A: 2, B: 0 }, 100, ["b1"]],
    ["the cap keeps the oldest across queues", [a1, a2, a3, b1], { A: 0, B: 0 }, 2, ["b1", "a1"]],
    ["a cap of zero sends nothing", [a1], { A: 0 }, 0, []],
  ];
  for (const [name, stale, depths, cap, expected] of cases) {
    it(name, () => assert.deepEqual(planResends(stale, new Map(Object.entries(depths)), cap), expected));
  }
  it(`sends at most ${MAX_RESENDS_PER_SWEEP} by default`, () => {
    const many = Array.from({ length: 500 }, (_, i) => work(`w${i}`, "A", i % 60));
    assert.equal(planResends(many, new Map()).length, MAX_RESENDS_PER_SWEEP);
  });
});

describe("quietJobAction: what a quiet running job needs", () => {
  const now = new Date("2026-01-01T13:00:00.000Z");
  const limits = { requeueAfterMs: 120_000, evaluationTimeoutMs: 3_600_000 };
  const job = (status: QuietJob["status"], evaluation: QuietJob["evaluation"], updatedAt = "2026-01-01T12:00:00.000Z"): QuietJob => ({ status, updatedAt, evaluation });
  const cases: Array<[string, QuietJob, ReturnType<typeof quietJobAction>["type"]]> = [
    ["queued past the window", job("evaluating", { status: "queued" }), "evaluation-waiting"],
    ["queued, still inside the window", job("evaluating", { status: "queued" }, "2026-01-01T12:59:00.000Z"), "finish-if-done"],
    ["running past the timeout", job("evaluating", { status: "running", leasedAt: "2026-01-01T12:00:00.000Z" }), "evaluation-timed-out"],
    ["running inside the timeout", job("evaluating", { status: "running", leasedAt: "2026-01-01T12:00:00.001Z" }), "finish-if-done"],
    ["running with no lease time (an older item): left alone", job("evaluating", { status: "running" }), "finish-if-done"],
    ["evaluated, building", job("building", { status: "succeeded" }), "finish-if-done"],
    ["evaluation failed", job("evaluating", { status: "failed" }), "finish-if-done"],
  ];
  for (const [name, quiet, expected] of cases) it(name, () => assert.equal(quietJobAction(quiet, now, limits).type, expected));
});

describe("evaluationHandBack: queue again until the attempts run out", () => {
  const cases: Array<[number, number, ReturnType<typeof evaluationHandBack>["type"]]> = [
    [0, 3, "queue-again"],
    [1, 3, "queue-again"],
    [2, 3, "give-up"],
    [0, 1, "give-up"],
    [7, 100, "queue-again"],
  ];
  for (const [before, max, expected] of cases) it(`handed back after ${before} earlier, at most ${max} attempts → ${expected}`, () => assert.equal(evaluationHandBack(before, max, "lost").type, expected));
  it("says why, and which knob sets the limit", () => {
    const decision = evaluationHandBack(2, 3, "its agent was lost");
    assert.equal(decision.type, "give-up");
    if (decision.type === "give-up") assert.match(decision.reason, /its agent was lost; the evaluation was handed back 3 times.*NIMBUS_MAX_EVALUATION_ATTEMPTS is 3/);
  });
});

describe("sweepDeadlines: each step's share of the sweep, left-over time passed on", () => {
  it("ends the last step at the end of the budget, the others in order before it", () => {
    const deadlines = sweepDeadlines(1_000, 40_000);
    const ends = SWEEP_STEPS.map((step) => deadlines[step]);
    assert.deepEqual([...ends].sort((a, b) => a - b), ends, "in step order");
    assert.equal(deadlines[SWEEP_STEPS[SWEEP_STEPS.length - 1]!], 41_000);
    assert.equal(SWEEP_STEPS[SWEEP_STEPS.length - 1], "github-reports", "reports go last: they have what the others left");
    assert.equal(deadlines["quiet-connections"], 1_000 + 0.1 * 40_000);
  });
  it("gives settling the largest share", () => {
    const most = SWEEP_STEPS.reduce((a, b) => (SWEEP_SHARES[a] >= SWEEP_SHARES[b] ? a : b));
    assert.equal(most, "unpropagated-settles");
    assert.ok(Math.abs(SWEEP_STEPS.reduce((n, s) => n + SWEEP_SHARES[s], 0) - 1) < 1e-9, "the shares add up to the budget");
  });
  it("a zero budget stops every step at once", () => {
    for (const deadline of Object.values(sweepDeadlines(5, 0))) assert.equal(deadline, 5);
  });
});

describe("settledLookFrom: where the sweeper's look at settles starts", () => {
  const before = new Date("2026-01-01T12:10:00.000Z");
  const minute = SETTLE_SHOWS_WITHIN_MS;
  const back = (iso: string) => new Date(Date.parse(iso) - minute).toISOString();
  it("the first look reads the index from its start", () => assert.equal(settledLookFrom(undefined, before), undefined));
  it("goes on a minute before where the last look ended, for settles that showed late", () => {
    assert.equal(settledLookFrom("2026-01-01T12:09:00.000Z", before), back("2026-01-01T12:09:00.000Z"));
  });
  it("and so whatever the time between sweeps: a look long ago, or one cut short", () => {
    assert.equal(settledLookFrom("2026-01-01T11:00:00.000Z", before), back("2026-01-01T11:00:00.000Z"));
  });
  it("a last end past this look's (a clock that went back) starts no later than a minute before this look's end", () => {
    assert.equal(settledLookFrom("2026-01-02T00:00:00.000Z", before), back(before.toISOString()));
  });
  it("a settle stamped before the last look's end, and shown only after it, is in the next look", () => {
    const lastEnd = "2026-01-01T12:09:00.000Z";
    const stamped = new Date(Date.parse(lastEnd) - minute + 1).toISOString();
    assert.ok(settledLookFrom(lastEnd, new Date(Date.parse(lastEnd) + 10 * minute))! <= stamped);
  });
});
