import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkRunFields, createCheckRunRequest, derivationName, MAX_SUMMARY_CHARS, summary, updateCheckRunRequest } from "../src/check-run.ts";
import { commitStatusRequest, MAX_STATUS_DESCRIPTION } from "../src/commit-status.ts";
import type { JobReport } from "../src/job-report.ts";
import { jobUrl, logUrl } from "../src/links.ts";
import { markdownText } from "../src/markdown-text.ts";
import { DASHBOARD, drv, report, SHA } from "./report-fixture.ts";


describe("links", () => {
  it("point at the job page and at each derivation's log on it", () => {
    assert.equal(jobUrl("https://n.example/", "j1"), "https://n.example/jobs/j1");
    assert.equal(logUrl("https://n.example/jobs/j1", "/nix/store/abc-hello-1.0.drv"), "https://n.example/jobs/j1/logs/abc-hello-1.0.drv");
  });
});

describe("check runs", () => {
  it("map each job status to GitHub's status and conclusion", () => {
    const expect = (status: JobReport["status"], want: { status: string; conclusion?: string }) => {
      const fields = checkRunFields(report({ status, hold: { reason: "from a fork.", approvalLabel: "nimbus-approved" } }));
      assert.equal(fields.status, want.status, status);
      assert.equal(fields.conclusion, want.conclusion, status);
    };
    expect("queued", { status: "queued" });
    expect("evaluating", { status: "in_progress" });
    expect("building", { status: "in_progress" });
    expect("succeeded", { status: "completed", conclusion: "success" });
    expect("failed", { status: "completed", conclusion: "failure" });
    expect("cancelled", { status: "completed", conclusion: "cancelled" });
    expect("held", { status: "completed", conclusion: "action_required" });
  });

  it("create carries head_sha, external_id = job id and the dashboard link; update the same fields without head_sha", () => {
    const r = report({ status: "succeeded", finishedAt: "2025-01-01T10:05:00.000Z", counts: { succeeded: 3, cached: 1 } });
    const create = createCheckRunRequest(r);
    assert.equal(create.owner, "octo");
    assert.equal(create.repo, "hello");
    assert.deepEqual(create.body, {
      name: "nimbus/onPush",
      head_sha: SHA,
      external_id: "j019aa7c3e5f1b24c9d0e",
      details_url: "https://nimbus.example.org/jobs/j019aa7c3e5f1b24c9d0e",
      status: "completed",
      started_at: "2025-01-01T10:00:05.000Z",
      conclusion: "success",
      completed_at: "2025-01-01T10:05:00.000Z",
      output: {
        title: "Succeeded: 4 derivations built or cached",
        summary:
          "**Succeeded: 4 derivations built or cached** — 3 built, 1 cached.\n\n" +
          "Details, logs and the full list: [job j019aa7c3e5f1b24c9d0e](https://nimbus.example.org/jobs/j019aa7c3e5f1b24c9d0e) on Nimbus.",
      },
    });
    const update = updateCheckRunRequest(r, 42);
    assert.equal(update.check_run_id, 42);
    assert.equal("head_sha" in update.body, false);
    assert.deepEqual(update.body, checkRunFields(r));
  });

  it("a queued run has no started_at; a held run offers the Approve button and explains the label", () => {
    assert.equal(checkRunFields(report({ status: "queued" })).started_at, undefined);
    const held = checkRunFields(report({ status: "held", hold: { reason: "Pull request #3 comes from mallory/hello.", approvalLabel: "nimbus-approved" } }));
    assert.deepEqual(held.actions, [{ label: "Approve and run", description: "Build it: no secrets, no effects", identifier: "approve" }]);
    for (const action of held.actions ?? []) {
      assert.ok(action.label.length <= 20 && action.description.length <= 40 && action.identifier.length <= 20);
    }
    assert.match(held.output.summary, /label \*\*nimbus\\-approved\*\*/);
    assert.match(held.output.summary, /without secrets and runs no effects/);
  });

  it("a failed job's summary lists counts, the evaluation error and tables of attribute errors and failures with log links", () => {
    const r = report({
      status: "failed",
      counts: { failed: 1, "dependency-failed": 1, succeeded: 5 },
      attributeErrors: [{ attribute: ["packages", "x86_64-linux", "broken"], message: "error: undefined variable 'foo'\n  at /src/ci.nix:3:5" }],
      failures: [
        { attribute: ["checks", "app"], drvPath: drv("app-check", 2), status: "dependency-failed", reason: "input hello-1.0 failed", logTail: [] },
        { attribute: ["packages", "x86_64-linux", "hello"], drvPath: drv("hello-1.0", 1), status: "failed", reason: "builder failed with exit code 2", logTail: ["compiling", "hello.c:1: error: *boom* | here"] },
      ],
    });
    const text = summary(r);
    assert.match(text, /^\*\*Failed: 2 failed derivations, 1 attribute error\*\* — 1 failed, 1 dependency failed, 5 built\./);
    assert.match(text, /### Attribute errors \(1\)\n\n\| Attribute \| Error \|\n\| --- \| --- \|\n\| packages\\\.x86\\_64\\-linux\\\.broken \| error\\: undefined variable \\'foo\\'<br>  at \\\/src\\\/ci\\\.nix\\:3\\:5 \|/);
    const table = text.slice(text.indexOf("### Failed derivations (2)"));
    const rows = table.split("\n").filter((line) => line.startsWith("| ") && !line.startsWith("| Attribute") && !line.startsWith("| ---"));
    assert.equal(rows.length, 2);
    // The failure that broke itself comes first; its dependent after.
    assert.equal(
      rows[0],
      `| packages\\.x86\\_64\\-linux\\.hello | [hello\\-1\\.0](${DASHBOARD}/logs/${drv("hello-1.0", 1).slice(11)}) | builder failed with exit code 2 | compiling<br>hello\\.c\\:1\\: error\\: \\*boom\\* \\| here |`,
    );
    assert.match(rows[1]!, /^\| checks\\\.app \| \[app\\-check\]\(.*\) \| input hello\\-1\\\.0 failed \|  \|$/);
  });

  it("an evaluation error is shown in a code block no log line can close", () => {
    const r = report({ status: "failed", evaluationError: "error: ```oops```\n````\n[](javascript:alert(1))" });
    const text = summary(r);
    assert.match(text, /### Evaluation error\n\n`````\nerror: ```oops```\n````\n\[\]\(javascript:alert\(1\)\)\n`````/);
    assert.equal(checkRunFields(r).output.title, "Failed: evaluation error");
  });

  it("repository text cannot make markup, mentions, links or table breaks", () => {
    const hostile = "@octocat <img src=x onerror=alert(1)> [click](https://evil.example) | **bold** `code` \u001b[31mred\u001b[0m\r\nnext";
    const escaped = markdownText(hostile);
    assert.equal(
      escaped,
      "\\@octocat \\<img src\\=x onerror\\=alert\\(1\\)\\> \\[click\\]\\(https\\:\\/\\/evil\\.example\\) \\| \\*\\*bold\\*\\* \\`code\\` red next",
    );
    // No unescaped punctuation survives.
    assert.doesNotMatch(escaped.replace(/\\[!-/:-@[-`{-~]/g, ""), /[!-/:-@[-`{-~]/);
  });

  it("a huge failure list stays within 65,535 characters and points at the rest", () => {
    const failures = Array.from({ length: 5000 }, (_, i) => ({
      attribute: ["packages", "x86_64-linux", `pkg-${i}`],
      drvPath: drv(`pkg-${i}`, i),
      status: "failed" as const,
      reason: "builder failed with exit code 1",
      logTail: Array.from({ length: 50 }, (_, j) => `line ${j} ${"x|*_".repeat(100)}`),
    }));
    const r = report({ status: "failed", counts: { failed: 5000 }, failures, failureCount: 5000 });
    const text = summary(r);
    assert.ok(text.length <= MAX_SUMMARY_CHARS, `summary is ${text.length} characters`);
    const shown = text.split("\n").filter((l) => l.startsWith("| packages")).length;
    assert.ok(shown >= 10 && shown < 5000, `${shown} rows shown`);
    assert.ok(text.endsWith(`…and ${5000 - shown} more failed derivations — see [job j019aa7c3e5f1b24c9d0e](${DASHBOARD}).`), text.slice(-200));
  });

  it("a few hundred plain failures are all listed; past the row limit the rest are counted", () => {
    const failures = Array.from({ length: 400 }, (_, i) => ({ drvPath: drv(`p${i}`, i), status: "failed" as const, reason: "failed", logTail: ["error"] }));
    const text = summary(report({ status: "failed", counts: { failed: 400 }, failures }));
    assert.equal(text.split("\n").filter((l) => l.startsWith("|  | [p")).length, 300);
    assert.match(text, /…and 100 more failed derivations — see/);
    assert.ok(text.length <= MAX_SUMMARY_CHARS);
  });

  it("counts failures the service did not list", () => {
    const text = summary(report({ status: "failed", counts: { failed: 2 }, failures: [{ drvPath: drv("a"), status: "failed", reason: "x", logTail: [] }] }));
    assert.match(text, /### Failed derivations \(2\)/);
    assert.match(text, /…and 1 more failed derivations/);
  });

  it("names a derivation without its hash", () => {
    assert.equal(derivationName("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12.drv"), "hello-2.12");
  });

  it("the check name follows the job name", () => {
    assert.equal(checkRunFields(report({ name: "effects" })).name, "nimbus/effects");
  });
});

describe("commit statuses", () => {
  it("one status per job, context nimbus/onPush, with the dashboard link", () => {
    const request = commitStatusRequest(report({ status: "failed", counts: { failed: 2 }, attributeErrors: [{ attribute: ["a"], message: "x" }] }));
    assert.deepEqual(request, {
      owner: "octo",
      repo: "hello",
      sha: SHA,
      body: { state: "failure", target_url: DASHBOARD, description: "Failed: 2 failed derivations, 1 attribute error", context: "nimbus/onPush" },
    });
  });

  it("maps states and keeps the description within 140 characters", () => {
    const state = (status: JobReport["status"]) => commitStatusRequest(report({ status })).body.state;
    assert.deepEqual(
      (["held", "queued", "evaluating", "building", "succeeded", "failed", "cancelled"] as const).map(state),
      ["pending", "pending", "pending", "pending", "success", "failure", "error"],
    );
    const held = commitStatusRequest(report({ status: "held", hold: { reason: "fork", approvalLabel: "x".repeat(300) } }));
    assert.equal(held.body.description.length, MAX_STATUS_DESCRIPTION);
    assert.ok(held.body.description.endsWith("…"));
  });
});

describe("JobReport", () => {
  it("refuses bad input with the field named", () => {
    assert.throws(() => report({ commit: "abc" }), /commit/);
    assert.throws(() => report({ repository: "no-slash" }), /owner\/name/);
    assert.throws(() => report({ dashboardUrl: "javascript:alert(1)" }), /dashboardUrl/);
    assert.throws(() => report({ jobId: "../../etc" }), /a job id/);
  });
});
