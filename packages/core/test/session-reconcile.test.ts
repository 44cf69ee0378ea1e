import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RESERVATION_TIMEOUT_MS, disconnectCheck, isAbandonedSlot, isOrphanedLease, reconcileHeartbeat, reconcileSession, unlistedTaskAction, type HeldTask, type Reconciliation, type SessionPresence, type TaskStanding } from "../src/session-reconcile.ts";

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

describe("isAbandonedSlot: a reserved slot whose task is not leased to its session", () => {
  const now = new Date("2026-01-01T00:01:00.000Z");
  const cases: Array<[string, string, boolean, boolean]> = [
    ["leased: the task runs", "2026-01-01T00:00:00.000Z", true, false],
    ["not leased, just reserved: the lease may be on its way", "2026-01-01T00:00:59.000Z", false, false],
    ["not leased, exactly the grace old: not yet", "2026-01-01T00:00:30.000Z", false, false],
    ["not leased for longer than the grace: given back", "2026-01-01T00:00:29.999Z", false, true],
  ];
  for (const [name, startedAt, leased, expected] of cases) it(name, () => assert.equal(isAbandonedSlot({ startedAt }, leased, now, 30_000), expected));
});

describe("isOrphanedLease: a lease whose session does not hold the task", () => {
  const cases: Array<[string, { tasks: Record<string, unknown> } | undefined, boolean]> = [
    ["the session holds it", { tasks: { t1: {} } }, false],
    ["the session ended", undefined, true],
    ["the session no longer holds it", { tasks: { t2: {} } }, true],
    ["a task id that names an object property is not held", { tasks: {} }, true],
  ];
  for (const [name, session, expected] of cases) {
    it(name, () => assert.equal(isOrphanedLease({ taskId: name.includes("property") ? "constructor" : "t1" }, session), expected));
  }
});

describe("disconnectCheck: a session checked when its disconnect grace is over", () => {
  const detachedAt = "2026-01-01T00:00:10.000Z";
  const cases: Array<[string, SessionPresence | undefined, ReturnType<typeof disconnectCheck>]> = [
    ["away since the disconnect: its tasks go to other agents", { lastSeen: "2026-01-01T00:00:05.000Z" }, "end"],
    ["last seen at the very moment it left: still away", { lastSeen: detachedAt }, "end"],
    ["back on a new connection", { connectionId: "c2", lastSeen: "2026-01-01T00:00:12.000Z" }, "keep"],
    ["seen after the disconnect, away again since (a later check decides)", { lastSeen: "2026-01-01T00:00:15.000Z" }, "keep"],
    ["on a connection (say, an older one still open)", { connectionId: "c1", lastSeen: "2026-01-01T00:00:05.000Z" }, "keep"],
    ["ended already", undefined, "gone"],
  ];
  for (const [name, session, expected] of cases) it(name, () => assert.equal(disconnectCheck(session, detachedAt), expected));
});
