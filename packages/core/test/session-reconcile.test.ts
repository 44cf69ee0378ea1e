import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reconcileSession, type Reconciliation } from "../src/session-reconcile.ts";

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
