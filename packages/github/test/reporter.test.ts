import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { GithubStandin, testAppKeys, type RecordedRequest } from "../../../test/support/github-standin.ts";
import { createGithubClient } from "../src/client.ts";
import type { GithubAppConfig, GithubTokenConfig } from "../src/config.ts";
import type { JobReport } from "../src/job-report.ts";
import { INITIAL_REPORT_STATE, type ReportState } from "../src/report-decision.ts";
import { createReporter, deliverReport, type Reporter } from "../src/reporter.ts";
import { DASHBOARD, drv, JOB_ID, report, SHA } from "./report-fixture.ts";

const APP_ID = 4242;
const keys = testAppKeys();
const T0 = Date.parse("2025-01-01T10:00:00.000Z");
const SECOND = 1000;
let clock = T0;
const now = () => new Date(clock);
const iso = (ms: number) => new Date(T0 + ms).toISOString();

let standin: GithubStandin;
let appConfig: GithubAppConfig;
let tokenConfig: GithubTokenConfig;

before(async () => {
  standin = await GithubStandin.start({
    appId: APP_ID,
    appPublicKey: keys.publicKey,
    now,
    installations: [{ id: 7, account: "octo", repositories: ["octo/hello"], permissions: { checks: "write", contents: "read", metadata: "read", statuses: "write" } }],
    personalTokens: ["ghp_personal"],
  });
  appConfig = { mode: "app", appId: APP_ID, privateKey: keys.privateKey, webhookSecret: "s", apiBaseUrl: standin.url, publicUrl: "https://nimbus.example.org" };
  tokenConfig = { mode: "token", token: "ghp_personal", webhookSecret: "s", apiBaseUrl: standin.url, publicUrl: "https://nimbus.example.org" };
});
after(() => standin.close());
beforeEach(() => {
  clock = T0;
  standin.reset();
});

const appReporter = (): Reporter => createReporter(createGithubClient(appConfig, { now }), { now });
const tokenReporter = (): Reporter => createReporter(createGithubClient(tokenConfig, { now }), { now });
/** Calls deliverReport at the current clock, as the service would, and keeps the state it returns. */
async function deliver(reporter: Reporter, r: JobReport, state: ReportState) {
  return deliverReport(reporter, r, state, { now: now() });
}
const calls = (requests: RecordedRequest[]) => requests.map((r) => `${r.method} ${r.path} ${r.status}`);
/** What the reporting sent: not the App's own JWT requests. */
const reporting = () => standin.apiRequests();

const hello = ["packages", "x86_64-linux", "hello"];
const failing = (over: Partial<Parameters<typeof report>[0]> = {}) =>
  report({
    status: "failed",
    version: 4,
    finishedAt: iso(12 * SECOND),
    counts: { failed: 1, "dependency-failed": 1, succeeded: 5 },
    failures: [
      { attribute: hello, drvPath: drv("hello-1.0", 1), status: "failed", reason: "builder failed with exit code 2", logTail: ["make: *** [all] Error 2"] },
      { attribute: ["checks", "app"], drvPath: drv("app-check", 2), status: "dependency-failed", reason: "input hello-1.0 failed", logTail: [] },
    ],
    ...over,
  });

describe("reporting a job as a check run (App mode)", () => {
  it("a job with failures makes exactly these requests: find, create, then one update while running and the verdict", async () => {
    const reporter = appReporter();
    let state: ReportState = INITIAL_REPORT_STATE;

    ({ state } = await deliver(reporter, report({ status: "queued", version: 1, startedAt: undefined, counts: {} }), state));
    clock = T0 + 2 * SECOND;
    const early = await deliver(reporter, report({ status: "building", version: 2 }), state);
    assert.equal(early.next?.toISOString(), iso(10 * SECOND), "the update waits for the interval");
    clock = T0 + 10 * SECOND;
    ({ state } = await deliver(reporter, report({ status: "building", version: 3 }), state));
    clock = T0 + 12 * SECOND;
    const last = await deliver(reporter, failing(), state);
    state = last.state;

    assert.deepEqual(calls(reporting()), [
      `GET /repos/octo/hello/commits/${SHA}/check-runs 200`,
      "POST /repos/octo/hello/check-runs 201",
      "PATCH /repos/octo/hello/check-runs/1000 200",
      "PATCH /repos/octo/hello/check-runs/1000 200",
    ]);
    const [find, create, progress, verdict] = reporting();
    assert.deepEqual(find!.query, { check_name: "nimbus/onPush", filter: "all", per_page: "100" });
    assert.deepEqual(create!.body, {
      name: "nimbus/onPush",
      external_id: JOB_ID,
      details_url: DASHBOARD,
      status: "queued",
      output: { title: "Queued", summary: `**Queued**.\n\nDetails, logs and the full list: [job ${JOB_ID}](${DASHBOARD}) on Nimbus.` },
      head_sha: SHA,
    });
    assert.deepEqual(progress!.body, {
      name: "nimbus/onPush",
      external_id: JOB_ID,
      details_url: DASHBOARD,
      status: "in_progress",
      started_at: "2025-01-01T10:00:05.000Z",
      output: {
        title: "Building: 3 of 5 derivations done",
        summary: `**Building: 3 of 5 derivations done** — 2 queued, 3 built.\n\nDetails, logs and the full list: [job ${JOB_ID}](${DASHBOARD}) on Nimbus.`,
      },
    });
    const logOf = (d: string) => `${DASHBOARD}/logs/${d.slice("/nix/store/".length)}`;
    assert.deepEqual(verdict!.body, {
      name: "nimbus/onPush",
      external_id: JOB_ID,
      details_url: DASHBOARD,
      status: "completed",
      started_at: "2025-01-01T10:00:05.000Z",
      conclusion: "failure",
      completed_at: iso(12 * SECOND),
      output: {
        title: "Failed: 2 failed derivations",
        summary: [
          "**Failed: 2 failed derivations** — 1 failed, 1 dependency failed, 5 built.",
          "",
          `Details, logs and the full list: [job ${JOB_ID}](${DASHBOARD}) on Nimbus.`,
          "",
          "### Failed derivations (2)",
          "",
          "| Attribute | Derivation | Why | Last lines of the log |",
          "| --- | --- | --- | --- |",
          `| packages\\.x86\\_64\\-linux\\.hello | [hello\\-1\\.0](${logOf(drv("hello-1.0", 1))}) | builder failed with exit code 2 | make\\: \\*\\*\\* \\[all\\] Error 2 |`,
          `| checks\\.app | [app\\-check](${logOf(drv("app-check", 2))}) | input hello\\-1\\.0 failed |  |`,
        ].join("\n"),
      },
    });
    // Every request carried an installation token for this repository with checks:write.
    for (const r of reporting()) assert.equal(r.auth.kind === "installation-token" && r.auth.permissions.checks, "write");
    const run = standin.checkRuns.get(1000)!;
    assert.equal(run.status, "completed");
    assert.equal(run.conclusion, "failure");
    assert.deepEqual(state, { failures: 0, checkRunId: 1000, lastSentVersion: 4, lastSentDigest: state.lastSentDigest, lastSentAt: iso(12 * SECOND), lastSentCompleted: true });

    // Delivering the same verdict again sends nothing.
    const again = await deliver(reporter, failing(), state);
    assert.equal(reporting().length, 4);
    assert.deepEqual(again.notes, ["GitHub already shows this report"]);
  });

  it("a secondary rate limit is waited out and the newest report lands, never dropped", async () => {
    const reporter = appReporter();
    let { state } = await deliver(reporter, report({ version: 1 }), INITIAL_REPORT_STATE);
    standin.failNext(2, "secondary-rate-limit", { method: "PATCH" });

    clock = T0 + 20 * SECOND;
    let delivery = await deliver(reporter, report({ version: 2, counts: { succeeded: 4, queued: 1 } }), state);
    assert.equal(delivery.next?.toISOString(), iso(80 * SECOND), "a minute after the first secondary limit");
    assert.match(delivery.notes.join(), /secondary rate limit; retrying at/);
    state = delivery.state;

    // The job finishes meanwhile: the verdict too waits for the limit, without a request.
    clock = T0 + 30 * SECOND;
    delivery = await deliver(reporter, failing({ version: 3 }), state);
    assert.equal(delivery.next?.toISOString(), iso(80 * SECOND));
    const patches = () => reporting().filter((r) => r.method === "PATCH");
    assert.equal(patches().length, 1);

    clock = T0 + 80 * SECOND;
    delivery = await deliver(reporter, failing({ version: 3 }), delivery.state);
    assert.equal(delivery.next?.toISOString(), iso(200 * SECOND), "two minutes after the second");
    clock = T0 + 200 * SECOND;
    delivery = await deliver(reporter, failing({ version: 3 }), delivery.state);
    assert.equal(delivery.next, undefined);
    assert.deepEqual(patches().map((r) => r.status), [403, 403, 200]);
    // What landed is the newest report, the verdict; the superseded progress report was never resent.
    assert.equal((patches()[2]!.body as { conclusion?: string }).conclusion, "failure");
    assert.equal(standin.checkRuns.get(1000)?.conclusion, "failure");
    assert.equal(delivery.state.failures, 0);
    assert.equal(delivery.state.retryAt, undefined);
  });

  it("honours retry-after and the primary limit's reset time exactly", async () => {
    const reporter = appReporter();
    standin.failNext(1, "secondary-rate-limit-retry-after", { method: "GET" });
    let delivery = await deliver(reporter, report(), INITIAL_REPORT_STATE);
    assert.equal(delivery.next?.toISOString(), iso(60 * SECOND));
    clock = T0 + 60 * SECOND;
    standin.failNext(1, "primary-rate-limit", { method: "POST", path: /check-runs$/ });
    delivery = await deliver(reporter, report(), delivery.state);
    assert.equal(delivery.next?.toISOString(), iso(60 * SECOND + 1800 * SECOND));
    assert.match(delivery.state.lastError ?? "", /primary rate limit/);
  });

  it("a rate limit on minting the token is honoured the same way", async () => {
    const reporter = appReporter();
    standin.failNext(1, "secondary-rate-limit-429", { path: /access_tokens$/ });
    const delivery = await deliver(reporter, report(), INITIAL_REPORT_STATE);
    assert.equal(delivery.next?.toISOString(), iso(60 * SECOND));
    assert.equal(standin.checkRuns.size, 0);
  });

  it("server errors back off 5 s, 10 s … and then the report lands", async () => {
    const reporter = appReporter();
    standin.failNext(2, "server-error", { method: "POST", path: /check-runs$/ });
    let delivery = await deliver(reporter, report(), INITIAL_REPORT_STATE);
    assert.equal(delivery.next?.toISOString(), iso(5 * SECOND));
    clock = T0 + 5 * SECOND;
    delivery = await deliver(reporter, report(), delivery.state);
    assert.equal(delivery.next?.toISOString(), iso(15 * SECOND));
    clock = T0 + 15 * SECOND;
    delivery = await deliver(reporter, report(), delivery.state);
    assert.equal(delivery.next, undefined);
    assert.equal(standin.checkRuns.size, 1);
  });

  it("a check run that is gone is created again in the same call", async () => {
    const reporter = appReporter();
    const { state } = await deliver(reporter, report({ version: 1 }), INITIAL_REPORT_STATE);
    standin.checkRuns.delete(state.checkRunId!);
    clock = T0 + 20 * SECOND;
    const delivery = await deliver(reporter, failing({ version: 2 }), state);
    assert.equal(delivery.next, undefined);
    assert.notEqual(delivery.state.checkRunId, state.checkRunId);
    assert.equal(standin.checkRuns.get(delivery.state.checkRunId!)?.conclusion, "failure");
    assert.deepEqual(calls(reporting()).slice(2), [
      `PATCH /repos/octo/hello/check-runs/${state.checkRunId} 404`,
      `GET /repos/octo/hello/commits/${SHA}/check-runs 200`,
      "POST /repos/octo/hello/check-runs 201",
    ]);
  });

  it("a run created by an attempt that died before storing its id is adopted, not duplicated", async () => {
    const reporter = appReporter();
    await deliver(reporter, report({ version: 1 }), INITIAL_REPORT_STATE);
    // The service never stored that state: it calls again from the beginning.
    const delivery = await deliver(reporter, failing({ version: 2 }), INITIAL_REPORT_STATE);
    assert.equal(standin.checkRuns.size, 1);
    assert.equal(delivery.state.checkRunId, 1000);
    assert.equal(standin.checkRuns.get(1000)?.conclusion, "failure");
  });

  it("gives up, saying why, when GitHub refuses for good; a newer report tries again", async () => {
    const reporter = appReporter();
    standin.failNext(1, { status: 403, body: { message: "Resource not accessible by integration", documentation_url: "https://docs.github.com" } });
    let delivery = await deliver(reporter, report({ version: 1 }), INITIAL_REPORT_STATE);
    assert.equal(delivery.next, undefined);
    assert.match(delivery.state.gaveUp?.reason ?? "", /Resource not accessible by integration — check the App's permissions/);
    const before = standin.requests.length;
    delivery = await deliver(reporter, report({ version: 1 }), delivery.state);
    assert.equal(standin.requests.length, before, "the same version is not tried again");
    delivery = await deliver(reporter, report({ version: 2 }), delivery.state);
    assert.equal(delivery.state.checkRunId, 1000);
  });

  it("a repository the App is not installed on gives up with the fix", async () => {
    const delivery = await deliver(appReporter(), report({ repository: "someone/else" }), INITIAL_REPORT_STATE);
    assert.match(delivery.state.gaveUp?.reason ?? "", /not installed on someone\/else/);
  });

  it("no answer at all is retried", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = createReporter(createGithubClient({ ...appConfig, apiBaseUrl: `http://127.0.0.1:${port}` }, { now }), { now });
    const delivery = await deliver(unreachable, report(), INITIAL_REPORT_STATE);
    assert.equal(delivery.next?.toISOString(), iso(5 * SECOND));
    assert.match(delivery.state.lastError ?? "", /no answer from GitHub/);
  });

  it("a held fork gets an action_required run with the Approve button", async () => {
    await deliver(appReporter(), report({ status: "held", hold: { reason: "Pull request #3 comes from mallory/hello.", approvalLabel: "nimbus-approved" } }), INITIAL_REPORT_STATE);
    const run = standin.checkRuns.get(1000)!;
    assert.equal(run.conclusion, "action_required");
    assert.deepEqual(run.actions, [{ label: "Approve and run", description: "Build it: no secrets, no effects", identifier: "approve" }]);
  });

  it("once approved, the held job runs under a new check run; the held one is not reopened", async () => {
    const reporter = appReporter();
    const hold = { reason: "Pull request #3 comes from mallory/hello.", approvalLabel: "nimbus-approved" };
    let { state } = await deliver(reporter, report({ status: "held", version: 1, hold }), INITIAL_REPORT_STATE);
    clock = T0 + 60 * SECOND;
    ({ state } = await deliver(reporter, report({ status: "queued", version: 2, startedAt: undefined }), state));
    clock = T0 + 61 * SECOND;
    ({ state } = await deliver(reporter, failing({ version: 3 }), state));
    assert.deepEqual(
      [...standin.checkRuns.values()].map((r) => [r.id, r.status, r.conclusion, r.external_id]),
      [
        [1000, "completed", "action_required", JOB_ID],
        [1001, "completed", "failure", JOB_ID],
      ],
    );
    assert.equal(state.checkRunId, 1001);
  });
});

describe("reporting a job as a commit status (token mode)", () => {
  it("posts one status per change with the personal token", async () => {
    const reporter = tokenReporter();
    let { state } = await deliver(reporter, report({ version: 1 }), INITIAL_REPORT_STATE);
    clock = T0 + 12 * SECOND;
    ({ state } = await deliver(reporter, failing(), state));
    assert.deepEqual(calls(reporting()), [`POST /repos/octo/hello/statuses/${SHA} 201`, `POST /repos/octo/hello/statuses/${SHA} 201`]);
    assert.deepEqual(reporting()[1]!.body, { state: "failure", target_url: DASHBOARD, description: "Failed: 2 failed derivations", context: "nimbus/onPush" });
    assert.equal(reporting()[1]!.auth.kind, "personal-token");
    assert.equal(state.checkRunId, undefined);
  });

  it("waits out a secondary rate limit", async () => {
    const reporter = tokenReporter();
    standin.failNext(1, "secondary-rate-limit");
    let delivery = await deliver(reporter, report(), INITIAL_REPORT_STATE);
    assert.equal(delivery.next?.toISOString(), iso(60 * SECOND));
    clock = T0 + 60 * SECOND;
    delivery = await deliver(reporter, report(), delivery.state);
    assert.equal(standin.statuses.length, 1);
  });
});
