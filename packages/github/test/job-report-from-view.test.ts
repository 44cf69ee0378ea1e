import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JobView } from "@nimbus/protocol";
import { summary } from "../src/check-run.ts";
import { jobReportFromView } from "../src/job-report-from-view.ts";
import { drv, SHA } from "./report-fixture.ts";

const view = (over: Partial<JobView> = {}): JobView => ({
  id: "j1",
  repository: "octo/hello",
  ref: "refs/heads/main",
  commit: SHA,
  cloneUrl: "https://github.com/octo/hello.git",
  trigger: { event: "push" },
  status: "failed",
  createdAt: "2025-01-01T10:00:00.000Z",
  updatedAt: "2025-01-01T10:05:00.000Z",
  finishedAt: "2025-01-01T10:05:00.000Z",
  evaluation: { status: "succeeded" },
  counts: { failed: 1, "dependency-failed": 200, succeeded: 3 },
  attributes: [
    { path: ["packages", "hello"], drvPath: drv("hello", 1), status: "failed" },
    { path: ["packages", "broken"], status: "error", error: "undefined variable 'x'" },
  ],
  failures: [{ drvPath: drv("hello", 1), status: "failed", reason: "exit code 1", logTail: ["boom"] }],
  ...over,
});

describe("jobReportFromView", () => {
  it("takes counts, attribute errors and failures (with their attribute) from the job's view", () => {
    const report = jobReportFromView(view(), { publicUrl: "https://n.example" });
    assert.equal(report.status, "failed");
    assert.equal(report.version, Date.parse("2025-01-01T10:05:00.000Z"));
    assert.equal(report.dashboardUrl, "https://n.example/jobs/j1");
    assert.deepEqual(report.attributeErrors, [{ attribute: ["packages", "broken"], message: "undefined variable 'x'" }]);
    assert.deepEqual(report.failures, [{ attribute: ["packages", "hello"], drvPath: drv("hello", 1), status: "failed", reason: "exit code 1", logTail: ["boom"] }]);
    // The view lists the first failures only; the counts say how many there are.
    assert.equal(report.failureCount, 201);
    assert.match(summary(report), /\n\n…and 200 more failed derivations — see \[job j1\]/);
  });

  it("a job whose evaluation waits in the queue is queued; a failed evaluation carries its error", () => {
    assert.equal(jobReportFromView(view({ status: "evaluating", evaluation: { status: "queued" }, finishedAt: undefined }), { publicUrl: "https://n.example" }).status, "queued");
    const failed = jobReportFromView(view({ evaluation: { status: "failed", error: "error: syntax error" } }), { publicUrl: "https://n.example" });
    assert.equal(failed.evaluationError, "error: syntax error");
  });

  it("a held fork is reported as held, with how to approve it", () => {
    const held = jobReportFromView(view({ status: "evaluating", evaluation: { status: "queued" } }), {
      publicUrl: "https://n.example",
      hold: { reason: "from a fork", approvalLabel: "nimbus-approved" },
    });
    assert.equal(held.status, "held");
  });
});
