import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { retryDecision, retryDelayMs, type RetryDecision } from "../src/retry.ts";

const policy = { maxAttempts: 5, retryBaseMs: 30_000, retryMaxMs: 30 * 60_000 };
// An injected clock: decisions are computed from this instant, never from the wall clock.
const now = new Date("2026-01-01T00:00:00.000Z");
const after = (ms: number) => new Date(now.getTime() + ms);

describe("retryDelayMs: Hydra's back-off", () => {
  const cases: Array<[number, number]> = [
    [0, 0],
    [1, 0],
    [2, 30_000],
    [3, 90_000],
    [4, 270_000],
    [5, 810_000],
    [6, 30 * 60_000],
    [20, 30 * 60_000],
  ];
  for (const [attempt, ms] of cases) it(`attempt ${attempt}: ${ms} ms`, () => assert.equal(retryDelayMs(attempt, policy), ms));
});

describe("retryDecision", () => {
  const cases: Array<[string, number, typeof policy, RetryDecision]> = [
    ["the first retry goes at once", 0, policy, { type: "retry-now" }],
    ["the second waits the base delay", 1, policy, { type: "retry-later", dueAt: after(30_000) }],
    ["the third waits three times as long", 2, policy, { type: "retry-later", dueAt: after(90_000) }],
    ["the last allowed attempt still retries", 3, policy, { type: "retry-later", dueAt: after(270_000) }],
    ["then it gives up, naming the reason and the count", 4, policy, { type: "give-up", reason: "agent lost; gave up after 5 attempts" }],
    ["one attempt allowed: gives up at once", 0, { ...policy, maxAttempts: 1 }, { type: "give-up", reason: "agent lost; gave up after 1 attempts" }],
    ["no back-off configured: retries at once", 3, { ...policy, retryBaseMs: 0 }, { type: "retry-now" }],
  ];
  for (const [name, attempt, p, expected] of cases) {
    it(name, () => assert.deepEqual(retryDecision(attempt, "agent lost", now, p), expected));
  }
});
