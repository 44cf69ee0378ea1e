/**
 * GitHub, end to end (docs/github.md), through the real local stack pointed at the GitHub
 * stand-in (NIMBUS_GITHUB_API_URL) with a GitHub App's secrets: signed webhooks start, hold,
 * approve, cancel and re-run jobs that scripted agents run over real WebSockets, and what the
 * stand-in received is what GitHub would show — check runs in App mode, commit statuses with a
 * personal token. Time is moved by calling the sweeper with a later clock, never by sleeping.
 */
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { BuildTask, EvaluateTask, EvaluationEvent } from "@nimbus/protocol";
import { SHARD, sweep } from "@nimbus/service";
import { indexShard } from "../packages/service/src/storage/keys.ts";
import { GithubStandin, testAppKeys, type StandinCheckRun } from "./support/github-standin.ts";
import { ScriptedAgent, type BuildOutcome } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const APP_ID = 4242;
const INSTALLATION = 77;
const PUBLIC_URL = "https://nimbus.example.org";
const REPO = "acme/widgets";
const CLONE_URL = "https://github.com/acme/widgets.git";
const sha = (c: string) => c.repeat(40);
const drv = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;

const derivation = (name: string, system = "x86_64-linux"): EvaluationEvent => ({
  kind: "derivation",
  drvPath: drv(name),
  system,
  requiredFeatures: [],
  inputDrvs: [],
  outputs: { out: `/nix/store/${name.padEnd(32, "1").slice(0, 32)}-${name}` },
});
const attribute = (path: string, name: string): EvaluationEvent => ({ kind: "attribute", path: [path], drvPath: drv(name), attributeType: "regular", needsBuild: true });

/** What each commit evaluates to: its attributes and derivations. */
const COMMITS: Record<string, EvaluationEvent[]> = {
  [sha("a")]: [derivation("oka"), derivation("brokena"), attribute("fine", "oka"), attribute("broken", "brokena")],
  [sha("b")]: [derivation("okb"), attribute("fine", "okb")],
  [sha("c")]: [derivation("okc"), attribute("fine", "okc")],
  [sha("d")]: [derivation("okd"), attribute("fine", "okd")],
  [sha("e")]: [derivation("slowe", "aarch64-linux"), attribute("slow", "slowe")],
  [sha("f")]: [derivation("okf"), attribute("fine", "okf")],
  [sha("7")]: [derivation("ok7"), attribute("fine", "ok7")],
};
const buildOutcome = (task: BuildTask): BuildOutcome =>
  task.drvPath.includes("broken") ? { status: "failed", exitCode: 2, log: ["running the tests", "FAIL: widgets are round"] } : { status: "succeeded" };

function pushPayload(commit: string, repository = REPO) {
  return {
    ref: "refs/heads/main",
    before: sha("0"),
    after: commit,
    deleted: false,
    repository: { full_name: repository, name: repository.split("/")[1], owner: { login: repository.split("/")[0] }, clone_url: `https://github.com/${repository}.git`, private: false },
    installation: { id: INSTALLATION },
    sender: { login: "maintainer" },
  };
}

function pullRequestPayload(action: string, fields: { number: number; commit: string; author: string; sender?: string; fork?: string; label?: string }) {
  const fork = fields.fork ?? `${fields.author}/widgets`;
  return {
    action,
    number: fields.number,
    pull_request: {
      number: fields.number,
      head: { sha: fields.commit, ref: "patch-1", repo: { full_name: fork, clone_url: `https://github.com/${fork}.git`, private: false } },
      base: { ref: "main", repo: { full_name: REPO } },
      user: { login: fields.author },
    },
    ...(fields.label ? { label: { name: fields.label } } : {}),
    repository: { full_name: REPO, name: "widgets", owner: { login: "acme" }, clone_url: CLONE_URL, private: false },
    installation: { id: INSTALLATION },
    sender: { login: fields.sender ?? fields.author },
  };
}

async function deliver(stack: TestStack, event: string, payload: unknown) {
  const body = JSON.stringify(payload);
  const response = await fetch(`${stack.url}/webhooks/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": `sha256=${createHmac("sha256", stack.secrets.GithubWebhookSecret).update(body).digest("hex")}`,
    },
    body,
  });
  return { status: response.status, body: (await response.json()) as any };
}

const jobStatus = async (stack: TestStack, jobId: string) => (await stack.api("GET", `/api/jobs/${jobId}`)).body.status as string;
const finished = (stack: TestStack, jobId: string) =>
  eventually(async () => {
    const status = await jobStatus(stack, jobId);
    return ["succeeded", "failed", "cancelled"].includes(status) ? status : undefined;
  }, `job ${jobId} to finish`);

describe("GitHub App mode: check runs, against the stand-in", () => {
  const keys = testAppKeys();
  let standin: GithubStandin;
  let stack: TestStack;
  let agent: ScriptedAgent;
  let slowAgent: ScriptedAgent;
  const jobs: Record<string, string> = {};

  /** Every evaluation either agent was given. */
  const evaluations = (): EvaluateTask[] => [...agent.evaluations, ...slowAgent.evaluations];
  /** The check runs of a job (by external_id), oldest first. */
  const runsOf = (jobId: string): StandinCheckRun[] => [...standin.checkRuns.values()].filter((r) => r.external_id === jobId);
  const completedRun = (jobId: string) =>
    eventually(async () => runsOf(jobId).find((r) => r.status === "completed"), `a completed check run of job ${jobId}`);

  before(async () => {
    standin = await GithubStandin.start({
      appId: APP_ID,
      appPublicKey: keys.publicKey,
      installations: [
        {
          id: INSTALLATION,
          account: "acme",
          repositories: [REPO, "acme/other"],
          permissions: { checks: "write", contents: "read", metadata: "read", pull_requests: "read", statuses: "write" },
        },
      ],
      collaborators: { [REPO]: { maintainer: "write", insider: "admin", outsider: "read", triager: "read" } },
    });
    stack = await startTestStack({
      sweepIntervalMs: 0,
      secrets: { GithubAppId: String(APP_ID), GithubAppPrivateKey: keys.privateKey },
      // A test below sweeps a minute ahead; with the default heartbeat (30 s) that sweep would take
      // the agents, silent for two heartbeats by its clock, for dead and close their connections.
      environment: { NIMBUS_GITHUB_API_URL: standin.url, NIMBUS_PUBLIC_URL: PUBLIC_URL, NIMBUS_HEARTBEAT_INTERVAL_MS: "120000" },
    });
    const { token } = await stack.createToken("github");
    agent = ScriptedAgent.create("linux", { concurrentTasks: 4 }, { evaluate: (task) => COMMITS[task.commit] ?? [], build: buildOutcome, buildMs: 50 });
    // The only agent for aarch64-linux, whose builds take a minute: they are still running when a test wants them to be.
    slowAgent = ScriptedAgent.create("slow", { systems: ["aarch64-linux"], concurrentTasks: 2 }, { evaluate: (task) => COMMITS[task.commit] ?? [], buildMs: 60_000 });
    await agent.connect(stack.agentSocketUrl, token);
    await slowAgent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent?.close();
    slowAgent?.close();
    await stack?.cleanup();
    await standin?.close();
  });

  it("a push whose job fails: a check run created in progress, completed as failure naming the failed attribute, with links", async () => {
    const answer = await deliver(stack, "push", pushPayload(sha("a")));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const jobId = (jobs.a = answer.body.jobId as string);
    assert.equal(await finished(stack, jobId), "failed");
    const run = await completedRun(jobId);
    assert.equal(runsOf(jobId).length, 1, "one check run per job");
    assert.equal(run.name, "nimbus/onPush");
    assert.equal(run.head_sha, sha("a"));
    assert.equal(run.history[0]!.status, "in_progress", "created while the agent evaluates");
    assert.equal(run.conclusion, "failure");
    assert.equal(run.details_url, `${PUBLIC_URL}/jobs/${jobId}`);
    assert.match(run.output.summary ?? "", /broken/, "the failed attribute is named");
    assert.match(run.output.summary ?? "", /FAIL\\: widgets are round/, "with its log's last lines (escaped as Markdown)");
    assert.ok((run.output.summary ?? "").includes(`${PUBLIC_URL}/jobs/${jobId}/logs/`), `a link to the failed derivation's log: ${run.output.summary}`);
    // Reported with an installation token for this repository, with checks:write only.
    const reports = standin.apiRequests().filter((r) => r.path.includes("/check-runs"));
    assert.ok(reports.length >= 2);
    for (const r of reports) {
      assert.equal(r.auth.kind, "installation-token");
      if (r.auth.kind === "installation-token") assert.deepEqual(r.auth.repositories, [REPO]);
    }
  });

  it("a push whose job succeeds: its check run completes as success", async () => {
    const answer = await deliver(stack, "push", pushPayload(sha("b")));
    const jobId = answer.body.jobId as string;
    assert.equal(await finished(stack, jobId), "succeeded");
    const run = await completedRun(jobId);
    assert.equal(run.conclusion, "success");
    assert.equal(runsOf(jobId).length, 1);
  });

  it("a secondary rate limit: the report waits (nothing lands), then the sweeper sends it once the wait is over", async () => {
    // The first check-run request is refused as GitHub refuses one over its secondary limit.
    standin.failNext(1, "secondary-rate-limit", { method: "POST", path: /\/check-runs$/ });
    const answer = await deliver(stack, "push", pushPayload(sha("c")));
    const jobId = answer.body.jobId as string;
    assert.equal(await finished(stack, jobId), "succeeded");
    const reportItem = async () => (await stack.scan("Reports")).find((r: any) => r.jobId === jobId) as any;
    // Another handler's change of the job, noted while the refused send held the lease, leaves the report due at once
    // for a moment; the sender's next round finds it may not go before the wait is over, and defers it.
    let last: unknown;
    const item = await eventually(async () => {
      const report = (last = await reportItem());
      return report?.dueAt && Date.parse(report.dueAt) - Date.now() > 50_000 ? report : undefined;
    }, () => `the report to be due a minute later: ${JSON.stringify(last)}`);
    assert.equal(item.state.lastError, "secondary rate limit");
    const waitMs = Date.parse(item.dueAt) - Date.now();
    assert.ok(waitMs > 50_000 && waitMs <= 60_000, `waits out a minute (${waitMs} ms)`);
    assert.equal(item.dueAt, item.state.retryAt);
    assert.equal(item.dueShard, indexShard(SHARD.reportDue, jobId), "in the byDue index, in its job's shard");
    assert.deepEqual(runsOf(jobId), [], "nothing landed yet");
    const refused = standin.requests.filter((r) => r.status === 403);
    assert.equal(refused.length, 1);

    // A change noted meanwhile makes it due now; the sweep that takes it up sends nothing and defers it to the wait's end.
    await stack.setAttributes("Reports", { jobId }, { dueAt: new Date().toISOString() });
    await sweep(new Date());
    assert.equal((await reportItem()).dueAt, item.state.retryAt, "due again when the wait is over, not at every sweep before");
    assert.deepEqual(runsOf(jobId), []);

    // Half-way through the wait the sweeper leaves it.
    await sweep(new Date(Date.now() + 30_000));
    assert.deepEqual(runsOf(jobId), []);
    // Once it is over the sweeper sends the latest report: the verdict, in one check run.
    const report = await sweep(new Date(Date.now() + 61_000));
    assert.ok(report.reportsSent >= 1, JSON.stringify(report));
    const run = await completedRun(jobId);
    assert.equal(run.conclusion, "success");
    assert.equal(runsOf(jobId).length, 1);
    const stored = (await stack.scan("Reports")).find((r: any) => r.jobId === jobId) as any;
    assert.equal(stored.dueAt, undefined, "nothing is due any more");
    assert.equal(stored.state.checkRunId, run.id);
    assert.equal(stored.state.lastError, undefined);
  });

  it("a fork's pull request is held until someone with write access approves it, then runs untrusted", async () => {
    const opened = await deliver(stack, "pull_request", pullRequestPayload("opened", { number: 12, commit: sha("d"), author: "outsider" }));
    assert.equal(opened.status, 201, JSON.stringify(opened.body));
    const jobId = opened.body.jobId as string;
    assert.equal(await jobStatus(stack, jobId), "held");
    const held = await completedRun(jobId);
    assert.equal(held.conclusion, "action_required");
    assert.deepEqual(held.actions.map((a: any) => a.identifier), ["approve"]);
    assert.equal(evaluations().some((t) => t.jobId === jobId), false, "nothing runs before the approval");

    // A label from someone who may add labels but not push approves nothing.
    const byTriager = await deliver(stack, "pull_request", pullRequestPayload("labeled", { number: 12, commit: sha("d"), author: "outsider", sender: "triager", label: "nimbus-approved" }));
    assert.equal(byTriager.status, 200);
    assert.deepEqual(byTriager.body.jobIds, []);
    assert.match(byTriager.body.note, /triager has read access/);
    // Nor does an approval of another commit.
    const otherCommit = await deliver(stack, "pull_request", pullRequestPayload("labeled", { number: 12, commit: sha("9"), author: "outsider", sender: "maintainer", label: "nimbus-approved" }));
    assert.deepEqual(otherCommit.body.jobIds, []);
    assert.equal(await jobStatus(stack, jobId), "held");
    assert.equal(evaluations().some((t) => t.jobId === jobId), false);

    const approved = await deliver(stack, "pull_request", pullRequestPayload("labeled", { number: 12, commit: sha("d"), author: "outsider", sender: "maintainer", label: "nimbus-approved" }));
    assert.deepEqual(approved.body, { action: "approve-fork", jobIds: [jobId] });
    assert.equal(await finished(stack, jobId), "succeeded");
    const task = evaluations().find((t) => t.jobId === jobId) as EvaluateTask;
    assert.equal(task.untrusted, true, "the agent is told: no secrets, no effects");
    assert.equal(task.cloneUrl, CLONE_URL, "fetched from the base repository");
    assert.equal(task.ref, "refs/pull/12/head");
    const view = (await stack.api("GET", `/api/jobs/${jobId}`)).body;
    assert.equal(view.untrusted, true);
    assert.equal(view.trigger.approvedBy, "maintainer");

    // The run goes on under a new check run; the held one stays as it was.
    const runs = await eventually(async () => (runsOf(jobId).length === 2 && runsOf(jobId)[1]!.status === "completed" ? runsOf(jobId) : undefined), "a second check run");
    assert.equal(runs[0]!.conclusion, "action_required");
    assert.equal(runs[1]!.conclusion, "success");
    // A second approval (the button after the label) starts nothing twice.
    const again = await deliver(stack, "pull_request", pullRequestPayload("labeled", { number: 12, commit: sha("d"), author: "outsider", sender: "maintainer", label: "nimbus-approved" }));
    assert.deepEqual(again.body.jobIds, []);
    assert.equal(evaluations().filter((t) => t.jobId === jobId).length, 1);
  });

  it("a closed pull request cancels its running job (a fork's by a collaborator, which started at once)", async () => {
    const opened = await deliver(stack, "pull_request", pullRequestPayload("opened", { number: 13, commit: sha("e"), author: "insider" }));
    const jobId = opened.body.jobId as string;
    // Its author could push anyway: no hold, but still untrusted.
    const building = await eventually(async () => (slowAgent.builds.length > 0 ? slowAgent.builds[0] : undefined), "the slow build to start");
    assert.equal(building.drvPath, drv("slowe"));
    assert.equal(evaluations().find((t) => t.jobId === jobId)?.untrusted, true);

    const closed = await deliver(stack, "pull_request", pullRequestPayload("closed", { number: 13, commit: sha("e"), author: "insider" }));
    assert.deepEqual(closed.body, { action: "cancel-pull-request", jobIds: [jobId] });
    assert.equal(await jobStatus(stack, jobId), "cancelled");
    await eventually(async () => (slowAgent.cancelled.includes(building.taskId) ? true : undefined), "the agent to be told to stop");
    const run = await completedRun(jobId);
    assert.equal(run.conclusion, "cancelled");
  });

  it("the check run's Re-run button starts a new job that rebuilds the failures", async () => {
    const failedJob = jobs.a!;
    const [run] = runsOf(failedJob);
    const checkRun = (jobId: string, repository = REPO) => ({
      action: "rerequested",
      check_run: { id: run!.id, name: "nimbus/onPush", head_sha: sha("a"), external_id: jobId, app: { id: APP_ID }, pull_requests: [] },
      repository: { full_name: repository, clone_url: `https://github.com/${repository}.git`, private: false },
      installation: { id: INSTALLATION },
      sender: { login: "maintainer" },
    });
    // A check run of another repository cannot name this one's job.
    const foreign = await deliver(stack, "check_run", checkRun(failedJob, "acme/other"));
    assert.equal(foreign.status, 202);
    assert.match(foreign.body.ignored, /not a job of that repository/);

    const brokenBuilds = () => agent.builds.filter((b) => b.drvPath === drv("brokena")).length;
    const before = brokenBuilds();
    const answer = await deliver(stack, "check_run", checkRun(failedJob));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const rerun = answer.body.jobId as string;
    assert.equal(await finished(stack, rerun), "failed");
    assert.equal(brokenBuilds(), before + 1, "the failure was built again");
    const view = (await stack.api("GET", `/api/jobs/${rerun}`)).body;
    assert.deepEqual(view.trigger, { event: "rerun", rerunOf: failedJob, rebuildFailures: true, sender: "maintainer" });
    const newRun = await completedRun(rerun);
    assert.equal(newRun.head_sha, sha("a"));
    assert.equal(newRun.conclusion, "failure");
  });

  it("refuses what a fork's author could try: their own approval, another App's check run, a malformed event — changing nothing", async () => {
    const opened = await deliver(stack, "pull_request", pullRequestPayload("opened", { number: 14, commit: sha("7"), author: "outsider" }));
    const jobId = opened.body.jobId as string;
    assert.equal(await jobStatus(stack, jobId), "held");
    const [held] = runsOf(jobId);
    const button = (sender: string, appId = APP_ID) => ({
      action: "requested_action",
      requested_action: { identifier: "approve" },
      check_run: { id: held!.id, name: "nimbus/onPush", head_sha: sha("7"), external_id: jobId, app: { id: appId }, pull_requests: [] },
      repository: { full_name: REPO, clone_url: CLONE_URL, private: false },
      installation: { id: INSTALLATION },
      sender: { login: sender },
    });
    const tables = async () => [await stack.scan("Jobs"), await stack.scan("Deliveries")];
    const before = await tables();
    const own = await deliver(stack, "check_run", button("outsider"));
    assert.equal(own.status, 200);
    assert.deepEqual(own.body.jobIds, []);
    assert.match(own.body.note, /outsider has read access/);
    const otherApp = await deliver(stack, "check_run", button("maintainer", APP_ID + 1));
    assert.equal(otherApp.status, 202);
    assert.match(otherApp.body.ignored, /belongs to app/);
    const malformed = await deliver(stack, "check_run", { ...button("maintainer"), check_run: { id: 1 } });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.error.message, /invalid check_run payload/);
    const rerunHeld = await deliver(stack, "check_run", { ...button("maintainer"), action: "rerequested" });
    assert.equal(rerunHeld.status, 202);
    assert.match(rerunHeld.body.ignored, /waits for approval/);
    assert.deepEqual(await tables(), before, "nothing changed");
    assert.equal(evaluations().some((t) => t.jobId === jobId), false);

    // The button, pressed by someone with write access, approves exactly that commit.
    const approved = await deliver(stack, "check_run", button("maintainer"));
    assert.deepEqual(approved.body, { action: "approve-fork", jobIds: [jobId] });
    await eventually(async () => (evaluations().some((t) => t.jobId === jobId) ? true : undefined), "the approved job's evaluation");
  });

  it("stores no token: no table holds one the stand-in issued", async () => {
    assert.ok(standin.tokens.length > 0);
    const { tables } = await import("@nimbus/service/resource-specs");
    for (const table of Object.keys(tables) as (keyof typeof tables)[]) {
      const text = JSON.stringify(await stack.scan(table));
      for (const { token } of standin.tokens) assert.ok(!text.includes(token), `a token in table ${table}`);
      assert.ok(!text.includes("BEGIN RSA PRIVATE KEY"), `the App's key in table ${table}`);
    }
  });
});

describe("personal-token mode: commit statuses, against the stand-in", () => {
  const keys = testAppKeys();
  let standin: GithubStandin;
  let stack: TestStack;
  let agent: ScriptedAgent;

  before(async () => {
    standin = await GithubStandin.start({ appId: APP_ID, appPublicKey: keys.publicKey, personalTokens: ["ghp_personal_test_token"] });
    stack = await startTestStack({
      sweepIntervalMs: 0,
      secrets: { GithubToken: "ghp_personal_test_token" },
      environment: { NIMBUS_GITHUB_API_URL: standin.url, NIMBUS_PUBLIC_URL: PUBLIC_URL },
    });
    const { token } = await stack.createToken("github");
    agent = ScriptedAgent.create("linux", { concurrentTasks: 2 }, { evaluate: (task) => COMMITS[task.commit] ?? [], build: buildOutcome, buildMs: 50 });
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent?.close();
    await stack?.cleanup();
    await standin?.close();
  });

  it("a push: a pending commit status, then success, linking to the job; no check runs", async () => {
    const answer = await deliver(stack, "push", pushPayload(sha("f")));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const jobId = answer.body.jobId as string;
    assert.equal(await finished(stack, jobId), "succeeded");
    const statuses = await eventually(async () => (standin.statuses.at(-1)?.state === "success" ? standin.statuses : undefined), "a success status");
    assert.equal(statuses[0]!.state, "pending");
    for (const status of statuses) {
      assert.equal(status.repository, REPO);
      assert.equal(status.sha, sha("f"));
      assert.equal(status.context, "nimbus/onPush");
      assert.equal(status.target_url, `${PUBLIC_URL}/jobs/${jobId}`);
      assert.ok((status.description ?? "").length <= 140);
    }
    assert.equal(standin.checkRuns.size, 0);
    for (const r of standin.requests) assert.equal(r.auth.kind, "personal-token");
  });
});

// The sweeper looks at every slot a session holds (an abandoned one is given back). Looking
// must not send the task again: for a private repository that would mint a clone token each
// sweep, and fail the evaluation whenever GitHub could not give one.
describe("a sweep while a private repository's evaluation runs", () => {
  const keys = testAppKeys();
  const SECRET_REPO = "acme/secret";
  let standin: GithubStandin;
  let stack: TestStack;
  let agent: ScriptedAgent;

  before(async () => {
    standin = await GithubStandin.start({
      appId: APP_ID,
      appPublicKey: keys.publicKey,
      installations: [{ id: INSTALLATION, account: "acme", repositories: [SECRET_REPO], permissions: { checks: "write", contents: "read", metadata: "read", statuses: "write" } }],
      // Its tokens expire 15 minutes from now: too soon to be handed out again for a clone
      // (they must live 30), so every clone credential is a new request here.
      now: () => new Date(Date.now() - 45 * 60_000),
    });
    stack = await startTestStack({
      sweepIntervalMs: 0,
      secrets: { GithubAppId: String(APP_ID), GithubAppPrivateKey: keys.privateKey },
      environment: { NIMBUS_GITHUB_API_URL: standin.url, NIMBUS_PUBLIC_URL: PUBLIC_URL },
    });
    const { token } = await stack.createToken("github");
    // Two batches a long pause apart: the evaluation is still running when the sweeper looks.
    const events = [derivation("oks"), attribute("fine", "oks")];
    agent = ScriptedAgent.create("linux", { concurrentTasks: 2 }, { evaluate: () => events, batchSize: 1, batchDelayMs: 3_000, buildMs: 10 });
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent?.close();
    await stack?.cleanup();
    await standin?.close();
  });

  it("asks GitHub for no token and leaves the evaluation running", async () => {
    const payload = pushPayload(sha("9"), SECRET_REPO);
    payload.repository.private = true;
    const answer = await deliver(stack, "push", payload);
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const jobId = answer.body.jobId as string;
    const task = await eventually(async () => agent.evaluations[0], "the evaluation to be sent");
    assert.ok(task.cloneCredential, "a private repository's evaluation carries a clone credential");
    const minted = () => standin.requests.filter((r) => r.method === "POST" && r.path.endsWith("/access_tokens")).length;
    const before = minted();
    // GitHub cannot give a token now: a sweep that sent the task again would fail the evaluation.
    standin.failNext(5, "server-error", { method: "POST", path: /\/access_tokens$/ });
    await sweep();
    assert.equal(minted(), before, "the sweep asked GitHub for a token");
    const job = (await stack.api("GET", `/api/jobs/${jobId}`)).body;
    assert.equal(job.evaluation.status, "running", JSON.stringify(job.evaluation));
    assert.equal(await finished(stack, jobId), "succeeded");
  });
});
