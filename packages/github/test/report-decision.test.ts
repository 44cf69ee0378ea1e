import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { afterSend, decideReport, earliestSend, DEFAULT_REPORT_SETTINGS, INITIAL_REPORT_STATE, reportRequest, updateInterval, type ReportDecision, type ReportMode, type ReportState } from "../src/report-decision.ts";
import { classifyFailure, transientBackoffMs, type FailedRequest } from "../src/request-failures.ts";
import { report } from "./report-fixture.ts";

const T0 = Date.parse("2025-01-01T10:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();

/** The digest GitHub holds after `r` was sent in `mode`. */
const sentDigest = (mode: ReportMode, r: ReturnType<typeof report>, state: ReportState) => reportRequest(mode, r, state, DEFAULT_REPORT_SETTINGS).digest;

describe("decideReport", () => {
  const building = report({ status: "building", version: 5 });
  const sentBuilding: ReportState = { failures: 0, checkRunId: 7, lastSentVersion: 5, lastSentAt: iso(0), lastSentDigest: sentDigest("checks", building, { failures: 0, checkRunId: 7 }) };
  const progressed = report({ status: "building", version: 6, counts: { succeeded: 4, queued: 1 } });
  const finished = report({ status: "succeeded", version: 7, counts: { succeeded: 5 }, finishedAt: iso(30_000) });

  const cases: Array<{ name: string; mode?: ReportMode; r: ReturnType<typeof report>; state: ReportState; now: number; want: string | RegExp; until?: number }> = [
    { name: "first report: create the check run", r: building, state: INITIAL_REPORT_STATE, now: 0, want: "send:create-check-run" },
    { name: "first report in token mode: a commit status", mode: "statuses", r: building, state: INITIAL_REPORT_STATE, now: 0, want: "send:commit-status" },
    { name: "same report again: nothing to send", r: building, state: sentBuilding, now: 60_000, want: /^skip:GitHub already shows/ },
    { name: "older snapshot than the one sent: superseded", r: report({ version: 4 }), state: sentBuilding, now: 60_000, want: /^skip:superseded/ },
    { name: "progress within the interval: wait until it passes", r: progressed, state: sentBuilding, now: 3_000, want: /^wait:throttled/, until: 10_000 },
    { name: "progress after the interval: update", r: progressed, state: sentBuilding, now: 10_000, want: "send:update-check-run" },
    { name: "the verdict is never throttled", r: finished, state: sentBuilding, now: 1_000, want: "send:update-check-run" },
    {
      name: "a rate limit holds even the verdict back",
      r: finished,
      state: { ...sentBuilding, failures: 1, retryAt: iso(60_000), lastError: "secondary rate limit" },
      now: 1_000,
      want: /^wait:waiting out secondary rate limit/,
      until: 60_000,
    },
    {
      name: "after the wait the newest report goes, not the one that was refused",
      r: finished,
      state: { ...sentBuilding, failures: 1, retryAt: iso(60_000), lastError: "secondary rate limit" },
      now: 60_000,
      want: "send:update-check-run",
    },
    {
      name: "a create that failed is retried as a create",
      r: building,
      state: { failures: 2, retryAt: iso(5_000), lastError: "no answer" },
      now: 5_000,
      want: "send:create-check-run",
    },
    {
      name: "a completed run (a held fork) is not reopened: a new run is created",
      r: report({ status: "queued", version: 6 }),
      state: { ...sentBuilding, lastSentCompleted: true },
      now: 60_000,
      want: "send:create-check-run",
    },
    { name: "a verdict after a verdict updates the same run", r: finished, state: { ...sentBuilding, lastSentCompleted: true }, now: 60_000, want: "send:update-check-run" },
    { name: "gave up on this version: skip", r: building, state: { failures: 1, gaveUp: { version: 5, reason: "not installed" } }, now: 0, want: /^skip:gave up on version 5/ },
    { name: "gave up on an older version: a newer report tries again", r: progressed, state: { failures: 1, gaveUp: { version: 5, reason: "not installed" } }, now: 0, want: "send:create-check-run" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const decision = decideReport(c.mode ?? "checks", c.r, c.state, at(c.now));
      const text = describeDecision(decision);
      if (typeof c.want === "string") assert.equal(text, c.want);
      else assert.match(text, c.want);
      if (c.until !== undefined) assert.equal(decision.type === "wait" && decision.until.getTime(), T0 + c.until);
    });
  }

  it("updates a long job less often: a tenth of its age, between 10 s and 60 s", () => {
    const r = report({ createdAt: iso(0) });
    assert.equal(updateInterval(r, at(30_000), DEFAULT_REPORT_SETTINGS), 10_000);
    assert.equal(updateInterval(r, at(300_000), DEFAULT_REPORT_SETTINGS), 30_000);
    assert.equal(updateInterval(r, at(3_600_000), DEFAULT_REPORT_SETTINGS), 60_000);
  });
});

describe("earliestSend", () => {
  const job = { createdAt: iso(0), final: false };
  it("is now when nothing holds a report back", () => {
    assert.equal(earliestSend(INITIAL_REPORT_STATE, job, at(1_000)).getTime(), T0 + 1_000);
  });
  it("is the end of the update interval while the job runs, but not for the verdict", () => {
    const state: ReportState = { failures: 0, lastSentAt: iso(1_000) };
    assert.equal(earliestSend(state, job, at(2_000)).getTime(), T0 + 11_000);
    assert.equal(earliestSend(state, { ...job, final: true }, at(2_000)).getTime(), T0 + 2_000);
  });
  it("is now once a held fork's job runs: its completed check run is replaced by a new one at once", () => {
    const state: ReportState = { failures: 0, checkRunId: 1, lastSentAt: iso(1_000), lastSentCompleted: true, lastSentDigest: "held" };
    assert.equal(earliestSend(state, job, at(2_000)).getTime(), T0 + 2_000);
    const decision = decideReport("checks", report({ createdAt: iso(0), status: "evaluating" }), state, at(2_000));
    assert.equal(decision.type === "send" && decision.send.type, "create-check-run");
  });
  it("is never before a rate limit's retry time", () => {
    const state: ReportState = { failures: 1, lastSentAt: iso(1_000), retryAt: iso(90_000) };
    assert.equal(earliestSend(state, { ...job, final: true }, at(2_000)).getTime(), T0 + 90_000);
  });
  it("agrees with decideReport", () => {
    const state: ReportState = { failures: 0, checkRunId: 1, lastSentAt: iso(1_000), lastSentDigest: "old" };
    const r = report({ createdAt: iso(0) });
    const decision = decideReport("checks", r, state, at(2_000));
    assert.equal(decision.type === "wait" && decision.until.getTime(), earliestSend(state, job, at(2_000)).getTime());
  });
});

function describeDecision(decision: ReportDecision): string {
  if (decision.type === "send") return `send:${decision.send.type}`;
  return `${decision.type}:${decision.reason}`;
}

describe("afterSend", () => {
  const r = report({ version: 3 });
  const send = () => {
    const d = decideReport("checks", r, INITIAL_REPORT_STATE, at(0));
    assert.equal(d.type, "send");
    return d as Extract<ReportDecision, { type: "send" }>;
  };

  it("success stores the check run id, version, digest and time, and clears failures", () => {
    const { state, next } = afterSend({ failures: 3, retryAt: iso(-1), lastError: "x" }, r, send(), { type: "sent", checkRunId: 99 }, at(1_000));
    assert.equal(next, undefined);
    assert.deepEqual(state, { failures: 0, checkRunId: 99, lastSentVersion: 3, lastSentDigest: send().digest, lastSentAt: iso(1_000), lastSentCompleted: false });
  });

  it("a rate limit waits exactly as long as GitHub said, then tries again", () => {
    const { state, next } = afterSend(INITIAL_REPORT_STATE, r, send(), { type: "failed", failure: { type: "rate-limited", retryAfterMs: 60_000, reason: "rate limited" } }, at(0));
    assert.equal(next?.getTime(), T0 + 60_000);
    assert.equal(state.retryAt, iso(60_000));
    assert.equal(state.failures, 1);
  });

  it("a transient failure backs off exponentially", () => {
    const fail = { type: "failed" as const, failure: { type: "transient" as const, reason: "502" } };
    const waits = [0, 1, 2, 3].map((failures) => afterSend({ failures }, r, send(), fail, at(0)).next!.getTime() - T0);
    assert.deepEqual(waits, [5_000, 10_000, 20_000, 40_000]);
    assert.equal(transientBackoffMs(50), 600_000);
  });

  it("a gone check run is forgotten and created again at once", () => {
    const { state, next } = afterSend({ failures: 0, checkRunId: 7, lastSentDigest: "d" }, r, send(), { type: "failed", failure: { type: "recreate", reason: "404" } }, at(0));
    assert.equal(state.checkRunId, undefined);
    assert.equal(state.lastSentDigest, undefined);
    assert.equal(next?.getTime(), T0);
  });

  it("a permanent failure gives up on this version only", () => {
    const { state, next } = afterSend(INITIAL_REPORT_STATE, r, send(), { type: "failed", failure: { type: "permanent", reason: "no permission" } }, at(0));
    assert.equal(next, undefined);
    assert.deepEqual(state.gaveUp, { version: 3, reason: "no permission" });
  });
});

describe("classifyFailure (GitHub's rate-limit rules)", () => {
  const now = T0;
  const failed = (over: Partial<FailedRequest>): FailedRequest => ({ message: "x", request: "update-check-run", ...over });
  const cases: Array<[string, FailedRequest, number, string, number?]> = [
    ["403 with retry-after", failed({ status: 403, headers: { "retry-after": "30" }, message: "You have exceeded a secondary rate limit." }), 0, "rate-limited", 30_000],
    ["429 with retry-after", failed({ status: 429, headers: { "retry-after": "5" } }), 0, "rate-limited", 5_000],
    ["403, remaining 0: until the reset", failed({ status: 403, headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(now / 1000 + 900) }, message: "API rate limit exceeded" }), 0, "rate-limited", 900_000],
    ["secondary limit without headers: a minute", failed({ status: 403, message: "You have exceeded a secondary rate limit. Please wait a few minutes" }), 0, "rate-limited", 60_000],
    ["secondary limit again: longer", failed({ status: 403, message: "You have exceeded a secondary rate limit." }), 2, "rate-limited", 240_000],
    ["secondary limit many times: at most 15 minutes", failed({ status: 403, message: "You have exceeded a secondary rate limit." }), 9, "rate-limited", 900_000],
    ["429 without headers: secondary", failed({ status: 429, message: "Too Many Requests" }), 0, "rate-limited", 60_000],
    ["403 for a missing permission: give up", failed({ status: 403, message: "Resource not accessible by integration" }), 0, "permanent"],
    ["502", failed({ status: 502 }), 0, "transient"],
    ["no answer", failed({}), 0, "transient"],
    ["401 (token revoked)", failed({ status: 401 }), 0, "transient"],
    ["404 on update: recreate", failed({ status: 404 }), 0, "recreate"],
    ["422 on update: recreate", failed({ status: 422 }), 0, "recreate"],
    ["404 on create: give up", failed({ status: 404, request: "create-check-run" }), 0, "permanent"],
    ["422 on create (1,000 runs of a name): give up", failed({ status: 422, request: "create-check-run" }), 0, "permanent"],
    ["422 on a status: give up", failed({ status: 422, request: "commit-status" }), 0, "permanent"],
    ["400: give up", failed({ status: 400 }), 0, "permanent"],
  ];
  for (const [name, input, attempt, type, wait] of cases) {
    it(name, () => {
      const result = classifyFailure(input, now, attempt);
      assert.equal(result.type, type);
      if (wait !== undefined) assert.equal(result.type === "rate-limited" && result.retryAfterMs, wait);
    });
  }
});
