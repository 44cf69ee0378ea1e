import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RESERVATION_TIMEOUT_MS, reconcileHeartbeat, reconcileSession, unlistedTaskAction, type HeldTask, type Reconciliation, type TaskStanding } from "../src/session-reconcile.ts";

describe("reconcileSession: a hello's tasksInProgress against what the session holds", () => {
  const cases: Array<[string, string[], string[], Reconciliation]> = [
    ["nothing held, nothing running", [], [], { resendIfLeased: [], cancel: [] }],
    ["both know a task: it goes on", ["t1"], ["t1"], { resendIfLeased: [], cancel: [] }],
    ["held but lost by the agent: resend", ["t1", "t2"], ["t1"], { resendIfLeased: ["t2"], cancel: [] }],
    ["running but handed elsewhere: cancel", ["t1"], ["t1", "t9"], { resendIfLeased: [], cancel: ["t9"] }],
    ["a restarted agent with a new task list", ["t1", "t2"], ["t3"], { resendIfLeased: ["t1", "t2"], cancel: ["t3"] }],
    ["a task listed twice is cancelled once", [], ["t3", "t3"], { resendIfLeased: [], cancel: ["t3"] }],
  ];
  for (const [name, held, running, expected] of cases) it(name, () => assert.deepEqual(reconcileSession(held, running), expected));
});

describe("reconcileHeartbeat: a heartbeat's tasksInProgress against what the session holds", () => {
  const now = new Date("2026-01-01T12:00:10.000Z");
  const held = (taskId: string, secondsAgo: number): HeldTask => ({ taskId, startedAt: new Date(now.getTime() - secondsAgo * 1000).toISOString() });
  const cases: Array<[string, HeldTask[], string[], { check: string[]; cancel: string[] }]> = [
    ["the agent lists everything held", [held("t1", 60)], ["t1"], { check: [], cancel: [] }],
    ["held a while, not listed: check it", [held("t1", 60)], [], { check: ["t1"], cancel: [] }],
    ["just given, not listed yet: its message may be on its way", [held("t1", 1)], [], { check: [], cancel: [] }],
    ["given exactly one settle window ago: check it", [held("t1", 5)], [], { check: ["t1"], cancel: [] }],
    ["listed, not held: cancel", [], ["t9"], { check: [], cancel: ["t9"] }],
    ["listed and just given: neither", [held("t1", 1)], ["t1"], { check: [], cancel: [] }],
    ["a mix", [held("t1", 60), held("t2", 60), held("t3", 1)], ["t2", "t8"], { check: ["t1"], cancel: ["t8"] }],
  ];
  for (const [name, tasks, running, expected] of cases) it(name, () => assert.deepEqual(reconcileHeartbeat(tasks, running, now, 5_000), expected));
});

describe("unlistedTaskAction: a held task its agent does not list", () => {
  const cases: Array<[TaskStanding, number, ReturnType<typeof unlistedTaskAction>]> = [
    ["leased", 1_000, "resend"],
    ["leased", 10 * RESERVATION_TIMEOUT_MS, "resend"],
    ["gone", 1_000, "release"],
    ["pending", 1_000, "wait"],
    ["pending", RESERVATION_TIMEOUT_MS - 1, "wait"],
    ["pending", RESERVATION_TIMEOUT_MS, "release"],
  ];
  for (const [standing, age, expected] of cases) it(`${standing}, held ${age} ms → ${expected}`, () => assert.equal(unlistedTaskAction(standing, age), expected));
});
