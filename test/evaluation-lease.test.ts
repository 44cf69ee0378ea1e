import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { sendSignedPush } from "@nimbus/cli";
import { localTableName } from "@nimbus/local";
import type { EvaluateTask, ServiceMessage } from "@nimbus/protocol";
import { sweep } from "@nimbus/service";
import { RawAgent, hello, newSession } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { ASK_AGAIN_MS } from "./support/ask-again.ts";

// The evaluation lease (issue #8, findings 9 and 10): what an earlier holder of an evaluation
// still sends never counts for a later attempt; a queued evaluation whose message was lost is
// sent again; an evaluation handed back too often, or running too long, fails its job with a
// clear error instead of leaving it `evaluating` for ever.
const DRV = "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-fresh.drv";
const MAX_EVALUATION_ATTEMPTS = 2;
const EVALUATION_TIMEOUT_MS = 5 * 60_000;
const REQUEUE_AFTER_MS = 2 * 60_000;

describe("the evaluation lease", () => {
  let stack: TestStack;
  let token: string;
  let commit = 0;
  const agents: RawAgent[] = [];

  before(async () => {
    stack = await startTestStack({
      sweepIntervalMs: 0,
      environment: {
        NIMBUS_MAX_EVALUATION_ATTEMPTS: String(MAX_EVALUATION_ATTEMPTS),
        NIMBUS_EVALUATION_TIMEOUT_MS: String(EVALUATION_TIMEOUT_MS),
        // The sweeps below jump minutes ahead: the agents, which send no heartbeats here, must not look lost.
        NIMBUS_SESSION_GRACE_MS: String(24 * 60 * 60_000),
      },
    });
    token = (await stack.createToken("lease")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  /** An agent on `session`, welcomed. */
  const connect = async (session = newSession(), hostname = "evaluator") => {
    const agent = await RawAgent.connect(stack.agentSocketUrl, token);
    agents.push(agent);
    assert.equal((await agent.request(hello({ hostname, concurrentTasks: 1 }, session))).type, "welcome");
    return agent;
  };
  const push = async () => {
    const { body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/lease", commit: String(++commit).padStart(40, "a") });
    return body.jobId as string;
  };
  const job = async (jobId: string) => (await stack.api("GET", `/api/jobs/${jobId}`)).body;
  const evaluateTask = (agent: RawAgent, jobId: string) =>
    eventually(async () => agent.messages.find((m): m is EvaluateTask => m.type === "evaluate" && m.jobId === jobId && !taken.has(m.taskId)), `an evaluate task for ${jobId}`).then((task) => {
      taken.add(task.taskId);
      return task;
    });
  const taken = new Set<string>();
  /**
   * Makes a job look as if it was last updated (and its evaluation leased) `ms` ago. Tests age
   * the items rather than jump a sweep's clock: a sweep whose clock jumps minutes ahead finds
   * every connection silent, and closes it.
   */
  const age = async (jobId: string, ms: number) => {
    const item = (await stack.getItem("Jobs", { jobId }))!;
    const at = new Date(Date.now() - ms).toISOString();
    const evaluation = item.evaluation as Record<string, unknown>;
    await stack.setAttributes("Jobs", { jobId }, { updatedAt: at, evaluation: { ...evaluation, ...(evaluation.leasedAt ? { leasedAt: at } : {}) } });
  };
  const goodbye = async (agent: RawAgent) => {
    agent.send({ type: "goodbye" });
    await agent.waitClosed();
  };

  it("refuses a late batch of an earlier attempt, which no longer counts for the next one", async () => {
    const session = newSession();
    const first = await connect(session);
    const jobId = await push();
    const earlier = await evaluateTask(first, jobId);
    // The agent leaves; its session ends and the evaluation goes back on the queue.
    await goodbye(first);
    const again = await connect(session);
    const later = await evaluateTask(again, jobId);
    assert.notEqual(later.taskId, earlier.taskId, "a new attempt is a new task");

    // A batch of the earlier attempt arrives late (frames are separate invocations: no order).
    const late = await again.request({ type: "evaluation-events", taskId: earlier.taskId, seq: 0, events: [{ kind: "attribute-error", path: ["stale"], message: "from the earlier attempt" }] });
    assert.equal(late.type === "error" && late.code, "unknown-task", JSON.stringify(late));
    const events = [
      // For a system no agent here has: it stays queued, out of the next tests' way.
      { kind: "derivation", drvPath: DRV, system: "riscv64-linux", requiredFeatures: [], inputDrvs: [], outputs: { out: "/nix/store/fresh" } },
      { kind: "attribute", path: ["fresh"], drvPath: DRV, attributeType: "regular", needsBuild: true },
    ];
    assert.deepEqual(await again.request({ type: "evaluation-events", taskId: later.taskId, seq: 0, events }), { type: "ack", taskId: later.taskId, seq: 0 });
    // A late evaluation-done of the earlier attempt cannot end this one either.
    const lateDone = await again.request({ type: "evaluation-done", taskId: earlier.taskId, batches: 0, status: "failed", error: "earlier" });
    assert.equal(lateDone.type === "error" && lateDone.code, "unknown-task");
    assert.deepEqual(await again.request({ type: "evaluation-done", taskId: later.taskId, batches: 1, status: "succeeded" }), { type: "result-ack", taskId: later.taskId, askAgainMs: ASK_AGAIN_MS });

    const view = await eventually(async () => ((await job(jobId)).status === "building" ? job(jobId) : undefined), "the job to build");
    assert.deepEqual(view.attributes.map((a: { path: string[]; error?: string }) => [a.path, a.error]), [[["fresh"], undefined]], "only the current attempt's events count");
    assert.deepEqual(view.counts, { queued: 1 });
    await goodbye(again);
  });

  it("sends again a queued evaluation whose message was lost, once", async () => {
    const jobId = await push();
    // The message is lost (as when a Lambda died after writing the job, or a local restart emptied the queues).
    const sqs = new SQSClient({ endpoint: stack.sqsEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" }, useQueueUrlAsEndpoint: false });
    try {
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: `${localTableName("Evaluations")}.fifo` }));
      const lost = await eventually(async () => (await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }))).Messages?.[0], "the evaluation message");
      assert.equal(JSON.parse(lost.Body!).jobId, jobId);
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: lost.ReceiptHandle }));
    } finally {
      sqs.destroy();
    }
    const later = (ms: number) => new Date(Date.now() + ms);
    assert.equal((await sweep(later(REQUEUE_AFTER_MS / 2))).evaluationsResent, 0, "not before the re-send window");
    assert.equal((await sweep(later(REQUEUE_AFTER_MS + 60_000))).evaluationsResent, 1);
    assert.equal((await sweep(later(2 * REQUEUE_AFTER_MS + 120_000))).evaluationsResent, 0, "its message is on the queue now");
    const agent = await connect();
    const task = await evaluateTask(agent, jobId);
    // Done with it, so the next tests' agents get their own jobs' evaluations.
    assert.equal((await agent.request({ type: "evaluation-done", taskId: task.taskId, batches: 0, status: "failed", error: "done" })).type, "result-ack");
    await goodbye(agent);
  });

  it("wakes an idle agent for a queued evaluation whose message is on its queue again, without sending it twice", async () => {
    // What an agent's invocation that received the message and died leaves: the message comes
    // back after its visibility timeout, and nothing but the sweeper will tell an idle agent.
    const jobId = await push();
    const sqs = new SQSClient({ endpoint: stack.sqsEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" }, useQueueUrlAsEndpoint: false });
    try {
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: `${localTableName("Evaluations")}.fifo` }));
      const held = await eventually(
        async () => (await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, VisibilityTimeout: 600 }))).Messages?.[0],
        "the evaluation message",
      );
      assert.equal(JSON.parse(held.Body!).jobId, jobId, "a receiver holds it (and dies)");
      const agent = await connect(newSession(), "idle");
      assert.ok(await stack.handlersIdle(10_000), "the hello's follow-up (a look at the queues) ended");
      assert.equal(agent.messages.some((m) => m.type === "evaluate"), false, "at hello the message was out of sight");
      // Its visibility timeout runs out (made to, rather than waited for).
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: held.ReceiptHandle, VisibilityTimeout: 0 }));
      await age(jobId, REQUEUE_AFTER_MS + 60_000);
      assert.equal((await sweep()).evaluationsResent, 0, "its message is on the queue: not sent again");
      const task = await evaluateTask(agent, jobId);
      assert.equal((await agent.request({ type: "evaluation-done", taskId: task.taskId, batches: 0, status: "failed", error: "done" })).type, "result-ack");
      await goodbye(agent);
    } finally {
      sqs.destroy();
    }
  });

  it(`fails the job's evaluation once it was handed back ${MAX_EVALUATION_ATTEMPTS} times`, async () => {
    const jobId = await push();
    for (let attempt = 1; attempt <= MAX_EVALUATION_ATTEMPTS; attempt++) {
      const agent = await connect(newSession(), `crashing-${attempt}`);
      await evaluateTask(agent, jobId);
      await goodbye(agent);
    }
    const view = await eventually(async () => ((await job(jobId)).status === "failed" ? job(jobId) : undefined), "the job to fail");
    assert.match(view.evaluation.error, /its agent crashing-2 shut down; the evaluation was handed back 2 times, so it was given up \(NIMBUS_MAX_EVALUATION_ATTEMPTS is 2\)/);
  });

  it("fails an evaluation that runs past the timeout, stops its agent and frees its slot", async () => {
    const agent = await connect(newSession(), "slow");
    const jobId = await push();
    const task = await evaluateTask(agent, jobId);
    await age(jobId, EVALUATION_TIMEOUT_MS / 2);
    assert.equal((await sweep()).evaluationsTimedOut, 0);
    const seen = agent.messages.length;
    await age(jobId, EVALUATION_TIMEOUT_MS + 1_000);
    assert.equal((await sweep()).evaluationsTimedOut, 1);
    const cancel = (await agent.next(seen)) as ServiceMessage;
    assert.deepEqual(cancel, { type: "cancel", taskId: task.taskId, reason: "the evaluation timed out" });
    const view = await job(jobId);
    assert.equal(view.status, "failed");
    assert.match(view.evaluation.error, /evaluation timed out after 5 min on slow \(NIMBUS_EVALUATION_TIMEOUT_MS\)/);
    const [session] = (await stack.scan("Sessions")).filter((s) => (s.agent as { hostname: string }).hostname === "slow");
    assert.equal(session?.runningTasks, 0, "its slot is free");
    // What the agent still sends for it changes nothing.
    const late = await agent.request({ type: "evaluation-done", taskId: task.taskId, batches: 0, status: "succeeded" });
    assert.ok(late.type === "error" || late.type === "result-ack");
    assert.equal((await job(jobId)).status, "failed");
  });
});
