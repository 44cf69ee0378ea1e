import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { classifyWebhook, DEFAULT_WEBHOOK_POLICY, WebhookPayloadError, webhookPolicy, type WebhookAction, type WebhookPolicy } from "../src/webhook-actions.ts";

/** GitHub's own example payloads: api.github.com and each GitHub Enterprise Server version the package ships. */
const require = createRequire(import.meta.url);
const examplesRoot = dirname(require.resolve("@octokit/webhooks-examples/package.json"));
const editions = ["api.github.com", "ghes-31", "ghes-32", "ghes-33", "ghes-34", "ghes-35"];
type Examples = Array<{ name: string; examples: Array<Record<string, unknown>> }>;
const load = (edition: string) => require(join(examplesRoot, edition, "index.json")) as Examples;

const EVENTS = ["push", "pull_request", "check_run", "installation"];
/** The App that made the check runs in the examples (installation examples use the same id). */
const APP_ID = 29310;
const policy: WebhookPolicy = { ...DEFAULT_WEBHOOK_POLICY, appId: APP_ID };

const clone = <T>(value: T): T => structuredClone(value);
const first = (event: string, match: (p: Record<string, unknown>) => boolean = () => true) => {
  const found = load("api.github.com").find((e) => e.name === event)?.examples.find(match);
  assert.ok(found, `no ${event} example`);
  return clone(found);
};

describe("classifyWebhook over every push, pull_request, check_run and installation example", () => {
  for (const edition of editions) {
    const events = load(edition).filter((e) => EVENTS.includes(e.name));
    it(`${edition}: each example is handled or ignored with a reason`, () => {
      let count = 0;
      for (const event of events) {
        for (const [i, payload] of event.examples.entries()) {
          const where = `${edition} ${event.name}[${i}] (${String(payload.action ?? payload.ref)})`;
          let action: WebhookAction;
          try {
            action = classifyWebhook(event.name, clone(payload), policy);
          } catch (error) {
            assert.fail(`${where} threw ${(error as Error).message}`);
          }
          if (action.type === "ignore") assert.ok(action.reason.length > 10, `${where}: ignored without a reason`);
          count++;
        }
      }
      assert.ok(count > 0, `${edition} has no examples of ${EVENTS.join(", ")}`);
    });
  }

  it("api.github.com examples map to the expected kinds of action", () => {
    const kinds = new Map<string, Set<string>>();
    for (const event of load("api.github.com").filter((e) => EVENTS.includes(e.name))) {
      for (const payload of event.examples) {
        const action = classifyWebhook(event.name, clone(payload), policy);
        const key = `${event.name}:${String(payload.action ?? "")}`;
        kinds.set(key, (kinds.get(key) ?? new Set()).add(action.type));
      }
    }
    const expect = (key: string, types: string[]) => assert.deepEqual([...(kinds.get(key) ?? [])].sort(), types.sort(), key);
    // Push examples: a tag created, tags and branches deleted, a branch created.
    expect("push:", ["start-job", "ignore"]);
    expect("pull_request:opened", ["ignore"]); // from a branch of the same repository: its push builds it
    expect("pull_request:synchronize", ["ignore"]);
    expect("pull_request:reopened", ["ignore"]);
    expect("pull_request:closed", ["cancel-pull-request"]);
    expect("pull_request:labeled", ["ignore"]); // "bug", not the approval label
    expect("pull_request:assigned", ["ignore"]);
    expect("check_run:created", ["ignore"]);
    expect("check_run:completed", ["ignore"]);
    expect("check_run:rerequested", ["ignore"]); // another app's run
    expect("check_run:requested_action", ["ignore"]);
    for (const change of ["created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"]) expect(`installation:${change}`, ["installation"]);
  });
});

describe("classifyWebhook, in detail", () => {
  it("a branch push starts a job with everything the service needs", () => {
    const push = first("push", (p) => p.ref === "refs/heads/master");
    push.installation = { id: 957387 };
    assert.deepEqual(classifyWebhook("push", push, policy), {
      type: "start-job",
      job: {
        repository: "Codertocat/Hello-World",
        owner: "Codertocat",
        name: "Hello-World",
        cloneUrl: "https://github.com/Codertocat/Hello-World.git",
        private: false,
        onGithub: true,
        // GitHub's own example payload: what secrets' isDefaultBranch and schedules go by.
        defaultBranch: "master",
        ref: "refs/heads/master",
        commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        trigger: "push",
        fork: false,
        sender: "Codertocat",
        installationId: 957387,
      },
    });
  });

  it("what `nimbus trigger` sends about a local repository starts a job that is not reported to GitHub", () => {
    const local = {
      ref: "refs/heads/main",
      after: "a".repeat(40),
      deleted: false,
      repository: { full_name: "widgets", name: "widgets", clone_url: "file:///home/me/widgets" },
      sender: { login: "nimbus" },
    };
    const action = classifyWebhook("push", local, policy);
    assert.equal(action.type, "start-job");
    if (action.type !== "start-job") return;
    assert.equal(action.job.onGithub, false);
    assert.equal(action.job.cloneUrl, "file:///home/me/widgets");
    assert.equal(action.job.private, false);
    for (const cloneUrl of ["git@github.com:acme/widgets.git", "/srv/git/widgets", "ssh://git@host/widgets.git"]) {
      assert.equal(classifyWebhook("push", { ...local, repository: { ...local.repository, clone_url: cloneUrl } }, policy).type, "start-job", cloneUrl);
    }
  });

  it("a push that deletes a branch is ignored", () => {
    const push = first("push", (p) => p.deleted === true);
    const action = classifyWebhook("push", push, policy);
    assert.equal(action.type, "ignore");
    assert.match((action as { reason: string }).reason, /deletes refs\/tags\/simple-tag/);
  });

  it("tags are built unless the policy says branches only", () => {
    const tag = first("push", (p) => p.ref === "refs/tags/simple-tag" && p.deleted === false);
    assert.equal(classifyWebhook("push", clone(tag), policy).type, "start-job");
    const action = classifyWebhook("push", tag, { ...policy, tags: "ignore" });
    assert.deepEqual(action, { type: "ignore", reason: "push of tag refs/tags/simple-tag: this stack builds branches only" });
  });

  it("a private repository's push says so (it needs a clone credential)", () => {
    const push = first("push", (p) => p.ref === "refs/heads/master");
    (push.repository as Record<string, unknown>).private = true;
    const action = classifyWebhook("push", push, policy);
    assert.equal(action.type === "start-job" && action.job.private, true);
  });

  it("a same-repository pull request is built only when the policy asks", () => {
    const opened = first("pull_request", (p) => p.action === "opened" && p.installation !== undefined);
    const action = classifyWebhook("pull_request", opened, { ...policy, sameRepositoryPullRequests: "build" });
    assert.equal(action.type, "start-job");
    if (action.type !== "start-job") return;
    assert.equal(action.job.ref, "refs/pull/2/head");
    assert.equal(action.job.commit, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    assert.equal(action.job.pullRequest, 2);
    assert.equal(action.job.fork, false);
    assert.equal(action.job.installationId, 1);
  });

  const forkOf = (payload: Record<string, unknown>) => {
    const pr = payload.pull_request as { head: { repo: Record<string, unknown> }; user: { login: string } };
    pr.head.repo = { ...pr.head.repo, full_name: "mallory/Hello-World", owner: { login: "mallory" }, clone_url: "https://github.com/mallory/Hello-World.git", fork: true };
    pr.user = { ...pr.user, login: "mallory" };
    payload.sender = { login: "mallory" };
    return payload;
  };

  for (const action of ["opened", "synchronize", "reopened"]) {
    it(`a fork's pull request ${action} is held, cloned from the base repository`, () => {
      const payload = forkOf(first("pull_request", (p) => p.action === action));
      const result = classifyWebhook("pull_request", payload, policy);
      assert.equal(result.type, "hold-fork");
      if (result.type !== "hold-fork") return;
      assert.equal(result.author, "mallory");
      assert.match(result.reason, /comes from mallory\/Hello-World/);
      assert.equal(result.job.fork, true);
      assert.equal(result.job.repository, "Codertocat/Hello-World");
      // The fork's commits are in the base repository under refs/pull/N/head; its installation token reaches them.
      assert.equal(result.job.cloneUrl, "https://github.com/Codertocat/Hello-World.git");
      assert.equal(result.job.ref, "refs/pull/2/head");
    });
  }

  it("a pull request from a deleted fork is still held", () => {
    const payload = first("pull_request", (p) => p.action === "opened");
    (payload.pull_request as { head: { repo: unknown } }).head.repo = null;
    const result = classifyWebhook("pull_request", payload, policy);
    assert.equal(result.type, "hold-fork");
    assert.match((result as { reason: string }).reason, /a deleted fork/);
  });

  it("the approval label on a fork approves the head commit named in the event", () => {
    const payload = forkOf(first("pull_request", (p) => p.action === "labeled"));
    payload.label = { name: "nimbus-approved" };
    payload.sender = { login: "Codertocat" };
    assert.deepEqual(classifyWebhook("pull_request", payload, policy), {
      type: "approve-fork",
      repository: "Codertocat/Hello-World",
      commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
      approver: "Codertocat",
      via: "label",
      pullRequest: 2,
      installationId: 1,
    });
  });

  it("the approval label on a same-repository pull request, or another label, approves nothing", () => {
    const same = first("pull_request", (p) => p.action === "labeled");
    same.label = { name: "nimbus-approved" };
    assert.match((classifyWebhook("pull_request", same, policy) as { reason: string }).reason, /only approves pull requests from forks/);
    const other = forkOf(first("pull_request", (p) => p.action === "labeled"));
    assert.match((classifyWebhook("pull_request", other, policy) as { reason: string }).reason, /label "bug" means nothing/);
  });

  it("a closed pull request cancels its jobs", () => {
    const closed = first("pull_request", (p) => p.action === "closed");
    assert.deepEqual(classifyWebhook("pull_request", closed, policy), {
      type: "cancel-pull-request",
      repository: "Codertocat/Hello-World",
      pullRequest: 2,
      reason: "pull request #2 was closed",
    });
  });

  const nimbusRun = (action: string) => {
    const payload = first("check_run", (p) => p.action === action);
    const run = payload.check_run as Record<string, unknown>;
    run.app = { ...(run.app as object), id: APP_ID };
    run.external_id = "j019aa7c3e5f1b24c9d0e";
    return payload;
  };

  it("Re-run on Nimbus's check run reruns its job, rebuilding failures", () => {
    assert.deepEqual(classifyWebhook("check_run", nimbusRun("rerequested"), policy), {
      type: "rerun-job",
      repository: "github/hello-world",
      jobId: "j019aa7c3e5f1b24c9d0e",
      rebuildFailures: true,
      requestedBy: "octocat",
      installationId: 1,
    });
  });

  it("Re-run on another app's check run, or without a job id, or in token mode, does nothing", () => {
    const other = first("check_run", (p) => p.action === "rerequested");
    assert.match((classifyWebhook("check_run", other, policy) as { reason: string }).reason, /belongs to app 2, not Nimbus/);
    const noJob = nimbusRun("rerequested");
    (noJob.check_run as Record<string, unknown>).external_id = "";
    assert.match((classifyWebhook("check_run", noJob, policy) as { reason: string }).reason, /names no Nimbus job/);
    const tokenMode = classifyWebhook("check_run", nimbusRun("rerequested"), DEFAULT_WEBHOOK_POLICY);
    assert.match((tokenMode as { reason: string }).reason, /only in App mode/);
  });

  it("the Approve button on a held run approves exactly that run's commit", () => {
    const payload = nimbusRun("requested_action");
    payload.requested_action = { identifier: "approve" };
    assert.deepEqual(classifyWebhook("check_run", payload, policy), {
      type: "approve-fork",
      repository: "electron/electron",
      commit: "5bd5f196a46b8222fb7484f05faba41a73cf34bd",
      approver: "codebytere",
      via: "check-run",
      jobId: "j019aa7c3e5f1b24c9d0e",
      pullRequest: 26764,
      installationId: 690857,
    });
    payload.requested_action = { identifier: "lgtm|26764" };
    assert.equal(classifyWebhook("check_run", payload, policy).type, "ignore");
  });

  it("installation events name the installation, for dropping its cached tokens", () => {
    const deleted = first("installation", (p) => p.action === "deleted");
    assert.deepEqual(classifyWebhook("installation", deleted, policy), {
      type: "installation",
      change: "deleted",
      installationId: 2,
      account: "octocat",
      repositories: ["octocat/Hello-World"],
    });
  });

  it("the stack's policy takes the App's id in App mode only", () => {
    const app = webhookPolicy({ mode: "app", appId: 5, privateKey: "k", webhookSecret: "s", apiBaseUrl: "https://api.github.com", publicUrl: "https://n" }, { tags: "ignore" });
    assert.deepEqual(app, { ...DEFAULT_WEBHOOK_POLICY, tags: "ignore", appId: 5 });
    assert.equal(webhookPolicy({ mode: "off", webhookSecret: "s" }).appId, undefined);
  });

  it("ping and unknown events are ignored with a reason", () => {
    assert.match((classifyWebhook("ping", { zen: "Design for failure." }, policy) as { reason: string }).reason, /webhook is set up/);
    assert.match((classifyWebhook("issues", {}, policy) as { reason: string }).reason, /event "issues" is not one Nimbus uses/);
  });

  it("a payload Nimbus would act on but cannot read is refused with the fields named", () => {
    const push = first("push", (p) => p.ref === "refs/heads/master");
    push.after = "not-a-sha";
    assert.throws(() => classifyWebhook("push", push, policy), (error: unknown) => {
      assert.ok(error instanceof WebhookPayloadError);
      assert.match(error.message, /invalid push payload: after: a full commit sha/);
      return true;
    });
    const pr = first("pull_request", (p) => p.action === "closed");
    delete (pr as { number?: unknown }).number;
    assert.throws(() => classifyWebhook("pull_request", pr, policy), /invalid pull_request payload: number/);
    assert.throws(() => classifyWebhook("push", "[]", policy), WebhookPayloadError);
    const cloneUrl = first("push", (p) => p.ref === "refs/heads/master");
    for (const evil of ["ext::sh -c evil", "--upload-pack=evil", "https://host/a b", ""]) {
      (cloneUrl.repository as Record<string, unknown>).clone_url = evil;
      assert.throws(() => classifyWebhook("push", clone(cloneUrl), policy), /repository\.clone_url/, evil);
    }
  });
});
