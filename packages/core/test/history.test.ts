import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildAttempts, statusHistory, type RecordedMove } from "../src/history.ts";

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe("status history and attempts", () => {
  const retried: RecordedMove[] = [
    { at: at(0), status: "waiting" },
    { at: at(1), status: "queued" },
    { at: at(2), status: "building", agent: "a1" },
    { at: at(5), status: "queued", bump: true, reason: "agent error: out of disk", ended: "exceptional" },
    { at: at(6), status: "building", agent: "a2" },
    { at: at(7), status: "queued", bump: true, reason: "its agent was lost", ended: "lost" },
    { at: at(8), status: "building", agent: "a3" },
    { at: at(9), status: "failed", agent: "a3", reason: "builder failed with exit code 2", exitCode: 2 },
  ];

  it("numbers moves back from the current attempt, a bump at a time", () => {
    assert.deepEqual(
      statusHistory(retried, 3).map((m) => [m.status, m.attempt]),
      [["waiting", 1], ["queued", 1], ["building", 1], ["queued", 2], ["building", 2], ["queued", 3], ["building", 3], ["failed", 3]],
    );
  });

  it("numbers right when the start of the history was cut", () => {
    assert.deepEqual(
      statusHistory(retried.slice(4), 3).map((m) => m.attempt),
      [2, 3, 3, 3],
    );
  });

  it("makes one attempt per build: agent, start, end, how it ended", () => {
    assert.deepEqual(buildAttempts(retried, 3), [
      { attempt: 1, agent: "a1", startedAt: at(2), finishedAt: at(5), outcome: "exceptional", reason: "agent error: out of disk" },
      { attempt: 2, agent: "a2", startedAt: at(6), finishedAt: at(7), outcome: "lost", reason: "its agent was lost" },
      { attempt: 3, agent: "a3", startedAt: at(8), finishedAt: at(9), outcome: "failed", exitCode: 2, reason: "builder failed with exit code 2" },
    ]);
  });

  it("leaves a build still running without an outcome", () => {
    const running = retried.slice(0, 3);
    assert.deepEqual(buildAttempts(running, 1), [{ attempt: 1, agent: "a1", startedAt: at(2) }]);
  });

  it("counts a cancelled build, and none for a derivation never built", () => {
    assert.deepEqual(
      buildAttempts([{ at: at(0), status: "queued" }, { at: at(1), status: "building", agent: "a" }, { at: at(2), status: "cancelled", reason: "its job was cancelled" }], 1),
      [{ attempt: 1, agent: "a", startedAt: at(1), finishedAt: at(2), outcome: "cancelled", reason: "its job was cancelled" }],
    );
    assert.deepEqual(buildAttempts([{ at: at(0), status: "waiting" }, { at: at(1), status: "dependency-failed" }], 1), []);
    assert.deepEqual(statusHistory([], 1), []);
  });
});
