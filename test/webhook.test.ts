import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DEFAULT_APPROVAL_LABEL } from "@nimbus/github";
import { WebhookAccepted, WebhookIgnored } from "@nimbus/protocol";
import { startTestStack, type TestStack } from "./support/stack.ts";

const sha = (c: string) => c.repeat(40);

function pushPayload(overrides: Record<string, unknown> = {}) {
  return {
    ref: "refs/heads/main",
    before: sha("0"),
    after: sha("a"),
    deleted: false,
    repository: { full_name: "acme/widgets", clone_url: "https://github.com/acme/widgets.git", private: false },
    sender: { login: "octocat" },
    head_commit: { id: sha("a") },
    ...overrides,
  };
}

/** A pull request as GitHub sends it: from a fork unless `head` says otherwise. */
function pullRequestPayload(action: string, head = "fork/widgets") {
  return {
    action,
    number: 7,
    pull_request: {
      head: { sha: sha("b"), ref: "feature", repo: { full_name: head, clone_url: `https://github.com/${head}.git` } },
      user: { login: "contributor" },
    },
    repository: { full_name: "acme/widgets", clone_url: "https://github.com/acme/widgets.git" },
    sender: { login: "contributor" },
  };
}

describe("POST /webhooks/github", () => {
  let stack: TestStack;
  let queue: SQSClient;
  let queueUrl: string;

  before(async () => {
    stack = await startTestStack();
    queue = new SQSClient({ endpoint: stack.sqsEndpoint, useQueueUrlAsEndpoint: false, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    queueUrl = JSON.parse(process.env.SST_RESOURCE_Evaluations ?? "{}").url;
    assert.ok(queueUrl, "the local stack sets SST_RESOURCE_Evaluations");
  });
  after(async () => {
    queue.destroy();
    await stack.cleanup();
  });

  const sign = (body: string | Buffer, secret = stack.secrets.GithubWebhookSecret) =>
    `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

  /** Posts like GitHub: signed, with event and delivery headers unless `headers` overrides them (null drops one). */
  async function deliver(event: string, payload: unknown, headers: Record<string, string | null> = {}) {
    const body = typeof payload === "string" || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    const all: Record<string, string | null> = {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": sign(body),
      ...headers,
    };
    const response = await fetch(`${stack.url}/webhooks/github`, {
      method: "POST",
      headers: Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null)),
      body,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  async function receiveAll() {
    const { Messages = [] } = await queue.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["MessageGroupId"] }),
    );
    for (const m of Messages) await queue.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    return Messages;
  }

  it("turns a signed push into a job and queues its evaluation", async () => {
    const answer = await deliver("push", pushPayload(), { "x-github-delivery": "delivery-push-1" });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const { jobId, redelivery } = WebhookAccepted.parse(answer.body);
    assert.equal(redelivery, false);
    assert.match(jobId, /^j[0-9a-f]{20}$/);

    const job: any = (await stack.scan("Jobs")).find((j: any) => j.jobId === jobId);
    assert.ok(job, "a Jobs item");
    assert.equal(job.repository, "acme/widgets");
    assert.equal(job.ref, "refs/heads/main");
    assert.equal(job.commit, sha("a"));
    assert.equal(job.cloneUrl, "https://github.com/acme/widgets.git");
    assert.deepEqual(job.trigger, { event: "push", deliveryId: "delivery-push-1", sender: "octocat" });
    assert.equal(job.status, "evaluating");
    assert.deepEqual(job.evaluation, { status: "queued", taskId: `eval-${jobId}` });
    assert.equal(job.listKey, "job");
    assert.ok((await stack.scan("Deliveries")).some((d: any) => d.deliveryId === "delivery-push-1" && d.jobId === jobId));

    const messages = await receiveAll();
    assert.deepEqual(messages.map((m) => JSON.parse(m.Body!)), [{ jobId }]);
    assert.equal(messages[0]!.Attributes?.MessageGroupId, jobId);
  });

  it("answers a redelivery with the same job and makes no second one", async () => {
    const first = await deliver("push", pushPayload({ after: sha("c") }), { "x-github-delivery": "delivery-twice" });
    assert.equal(first.status, 201);
    const jobs = await stack.scan("Jobs");
    const again = await deliver("push", pushPayload({ after: sha("c") }), { "x-github-delivery": "delivery-twice" });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { jobId: first.body.jobId, redelivery: true });
    assert.deepEqual(await stack.scan("Jobs"), jobs, "no second Job item");
    // Any queued message is for that one job (SQS deduplicates on the job id).
    for (const m of await receiveAll()) assert.deepEqual(JSON.parse(m.Body!), { jobId: first.body.jobId });
  });

  it("answers a signed body replayed under a new delivery id with the job it made first", async () => {
    const payload = JSON.stringify(pushPayload({ after: sha("9") }));
    const first = await deliver("push", payload);
    assert.equal(first.status, 201);
    const jobs = await stack.scan("Jobs");
    const replayed = await deliver("push", payload, { "x-github-delivery": randomUUID() });
    assert.deepEqual(replayed, { status: 200, body: { jobId: first.body.jobId, redelivery: true } });
    assert.deepEqual(await stack.scan("Jobs"), jobs, "no second Job item");
    // Another commit, ref or repository is another event.
    const another = await deliver("push", pushPayload({ after: sha("8") }));
    assert.equal(another.status, 201);
    assert.notEqual(another.body.jobId, first.body.jobId);
    const otherRef = await deliver("push", { ...JSON.parse(payload), ref: "refs/heads/release" });
    assert.equal(otherRef.status, 201);
    // The same commit pushed to the same branch again is a new event: GitHub's body differs (`before`).
    const pushedAgain = await deliver("push", { ...JSON.parse(payload), before: sha("7") });
    assert.equal(pushedAgain.status, 201);
    // A sender's retry under the same delivery id is that delivery, whatever its body.
    const deliveryId = randomUUID();
    const retried = await deliver("push", pushPayload({ after: sha("6") }), { "x-github-delivery": deliveryId });
    assert.equal(retried.status, 201);
    const retry = await deliver("push", pushPayload({ after: sha("6"), before: sha("5") }), { "x-github-delivery": deliveryId });
    assert.deepEqual(retry, { status: 200, body: { jobId: retried.body.jobId, redelivery: true } });
    await receiveAll();
  });

  it("makes a new job for a pull request reopened at the commit its closing cancelled, and none for a replay of either", async () => {
    const pullRequest = (action: string) => ({ ...pullRequestPayload(action), number: 8, pull_request: { ...pullRequestPayload(action).pull_request, head: { ...pullRequestPayload(action).pull_request.head, sha: sha("d") } } });
    const openedBody = JSON.stringify(pullRequest("opened"));
    const opened = await deliver("pull_request", openedBody);
    assert.equal(opened.status, 201, JSON.stringify(opened.body));
    assert.deepEqual(await deliver("pull_request", openedBody, { "x-github-delivery": randomUUID() }), { status: 200, body: { jobId: opened.body.jobId, redelivery: true } });
    const closed = await deliver("pull_request", pullRequest("closed"));
    assert.deepEqual(closed.body, { action: "cancel-pull-request", jobIds: [opened.body.jobId] });
    const reopenedBody = JSON.stringify(pullRequest("reopened"));
    const reopened = await deliver("pull_request", reopenedBody);
    assert.equal(reopened.status, 201, "not answered with the cancelled job");
    assert.notEqual(reopened.body.jobId, opened.body.jobId);
    assert.equal((await stack.api("GET", `/api/jobs/${reopened.body.jobId}`)).body.status, "held");
    assert.deepEqual(await deliver("pull_request", reopenedBody, { "x-github-delivery": randomUUID() }), { status: 200, body: { jobId: reopened.body.jobId, redelivery: true } });
    assert.equal((await stack.scan("Jobs")).filter((j) => j.pullRequestKey === `acme/widgets#8`).length, 2, "two jobs: opened, reopened");
    await deliver("pull_request", pullRequest("closed"));
    assert.deepEqual(await receiveAll(), [], "a fork's jobs wait for approval");
  });

  it("finishes, on redelivery, a job whose first delivery died after claiming it", async () => {
    // What a crash between the Deliveries put and the Jobs put leaves behind.
    const jobId = "j0000000000010123abcd";
    await stack.setAttributes("Deliveries", { deliveryId: "delivery-crashed" }, { jobId, createdAt: new Date().toISOString() });
    const answer = await deliver("push", pushPayload({ after: sha("f") }), { "x-github-delivery": "delivery-crashed" });
    assert.deepEqual(answer, { status: 200, body: { jobId, redelivery: true } });
    const job: any = (await stack.scan("Jobs")).find((j: any) => j.jobId === jobId);
    assert.equal(job?.commit, sha("f"));
    assert.deepEqual((await receiveAll()).map((m) => JSON.parse(m.Body!)), [{ jobId }]);
  });

  it("holds an opened pull request from a fork: a held job, nothing queued, fetched from the base repository", async () => {
    const answer = await deliver("pull_request", pullRequestPayload("opened"));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const job: any = (await stack.scan("Jobs")).find((j: any) => j.jobId === answer.body.jobId);
    assert.equal(job.status, "held");
    assert.equal(job.ref, "refs/pull/7/head");
    assert.equal(job.commit, sha("b"));
    // GitHub keeps a pull request's commits under refs/pull/7/head of the base repository.
    assert.equal(job.cloneUrl, "https://github.com/acme/widgets.git");
    assert.equal(job.repository, "acme/widgets");
    assert.equal(job.trigger.pullRequest, 7);
    assert.equal(job.trigger.event, "pull_request");
    assert.equal(job.untrusted, true);
    assert.equal(job.heldKey, `acme/widgets#${sha("b")}`);
    assert.equal(job.activeShard, undefined, "a held job is not running: the sweeper leaves it alone");
    assert.deepEqual(await receiveAll(), [], "nothing is evaluated before an approval");
    const view = await stack.api("GET", `/api/jobs/${job.jobId}`);
    assert.equal(view.body.status, "held");
    assert.equal(view.body.untrusted, true);
    assert.equal(view.body.holdReason, "Pull request #7 comes from fork/widgets: its code runs only once someone with write access approves this commit.");
    assert.equal(view.body.approvalLabel, DEFAULT_APPROVAL_LABEL, "the label the webhook policy approves with");

    // With GitHub reporting off nobody's permission can be looked up: a label approves nothing.
    const label = { ...pullRequestPayload("labeled"), label: { name: "nimbus-approved" }, sender: { login: "maintainer" } };
    const approval = await deliver("pull_request", label);
    assert.equal(approval.status, 200, JSON.stringify(approval.body));
    assert.deepEqual(approval.body.jobIds, []);
    assert.match(approval.body.note, /cannot look up maintainer's permission/);
    assert.equal((await stack.api("GET", `/api/jobs/${job.jobId}`)).body.status, "held");

    // Closing the pull request cancels the held job.
    const closed = await deliver("pull_request", pullRequestPayload("closed"));
    assert.deepEqual(closed, { status: 200, body: { action: "cancel-pull-request", jobIds: [job.jobId] } });
    const cancelled = (await stack.api("GET", `/api/jobs/${job.jobId}`)).body;
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.holdReason, undefined, "shown only while held");
    assert.equal(cancelled.approvalLabel, undefined, "shown only while held");
    assert.deepEqual(await receiveAll(), []);
  });

  it("verifies the signature over the bytes received, also when the gateway base64-encodes them", async () => {
    const body = Buffer.from(JSON.stringify(pushPayload({ after: sha("d") })));
    const answer = await deliver("push", body, { "content-type": "application/octet-stream" });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    await receiveAll();
  });

  it("refuses bad deliveries with a clear error and stores nothing", async () => {
    const tables = async () => [await stack.scan("Deliveries"), await stack.scan("Jobs")];
    const before = await tables();
    const payload = JSON.stringify(pushPayload({ after: sha("e") }));
    const cases: Array<[string, Awaited<ReturnType<typeof deliver>>, number, RegExp]> = [
      ["no signature", await deliver("push", payload, { "x-hub-signature-256": null }), 401, /missing X-Hub-Signature-256/],
      ["another secret", await deliver("push", payload, { "x-hub-signature-256": sign(payload, "not-the-secret") }), 401, /does not match/],
      ["another body", await deliver("push", payload, { "x-hub-signature-256": sign(`${payload} `) }), 401, /does not match/],
      ["garbage signature", await deliver("push", payload, { "x-hub-signature-256": "sha1=abc" }), 401, /does not match/],
      ["no event header", await deliver("push", payload, { "x-github-event": null }), 400, /X-GitHub-Event/],
      ["no delivery header", await deliver("push", payload, { "x-github-delivery": null }), 400, /X-GitHub-Delivery/],
      ["malformed JSON", await deliver("push", "{not json"), 400, /not valid JSON/],
      ["short sha", await deliver("push", pushPayload({ after: "abc123" })), 400, /after: a full commit sha/],
      ["no repository", await deliver("push", pushPayload({ repository: undefined })), 400, /repository/],
      ["pull request without head", await deliver("pull_request", { ...pullRequestPayload("opened"), pull_request: {} }), 400, /pull_request\.head/],
      ["pull request without its author", await deliver("pull_request", { ...pullRequestPayload("opened"), pull_request: { head: pullRequestPayload("opened").pull_request.head } }), 400, /pull_request\.user/],
      ["an ext:: clone URL", await deliver("push", pushPayload({ repository: { full_name: "acme/widgets", clone_url: "ext::sh -c touch% /tmp/pwned" } })), 400, /clone_url/],
      ["oversize", await deliver("push", JSON.stringify({ ...pushPayload(), padding: "x".repeat(1024 * 1024) })), 413, /at most 1048576/],
    ];
    for (const [what, answer, status, message] of cases) {
      assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.error.message, message, what);
      assert.equal(answer.body.error.code, status === 401 ? "unauthorized" : status === 413 ? "payload-too-large" : "bad-request", what);
    }
    assert.deepEqual(await tables(), before);
  });

  it("acknowledges events that start no job, and stores nothing", async () => {
    const tables = async () => [await stack.scan("Deliveries"), await stack.scan("Jobs")];
    const before = await tables();
    const cases: Array<[string, unknown, RegExp]> = [
      ["ping", { zen: "Keep it logically awesome.", hook_id: 1 }, /ping: the webhook is set up/],
      ["issues", { action: "opened" }, /event "issues"/],
      ["pull_request", pullRequestPayload("edited"), /action "edited"/],
      ["pull_request", pullRequestPayload("opened", "acme/widgets"), /its push builds the commit/],
      ["pull_request", { ...pullRequestPayload("labeled"), label: { name: "bug" } }, /label "bug" means nothing/],
      ["check_run", { action: "rerequested" }, /only in App mode/],
      ["push", pushPayload({ deleted: true, after: sha("0") }), /deletes refs\/heads\/main/],
      ["push", pushPayload({ after: sha("0") }), /deletes/],
    ];
    for (const [event, payload, reason] of cases) {
      const answer = await deliver(event, payload);
      assert.equal(answer.status, 202, `${event}: ${JSON.stringify(answer.body)}`);
      assert.match(WebhookIgnored.parse(answer.body).ignored, reason);
    }
    assert.deepEqual(await tables(), before);
    assert.deepEqual(await receiveAll(), []);
  });
});
