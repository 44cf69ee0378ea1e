import { createHash } from "node:crypto";
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, type Message } from "@aws-sdk/client-sqs";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { canBuild, parseQueueKey, type BuilderCapabilities } from "@nimbus/core";
import type { AgentInfo } from "@nimbus/protocol";
import { sendToAgent } from "./agent-channel.ts";
import { dynamo, sqs } from "./aws-clients.ts";
import { buildQueueUrl, forgetBuildQueue, isMissingQueue, listBuildQueues } from "./build-queues.ts";
import { getDerivation, moveDerivation } from "./derivations.ts";
import { unlessConditionFails } from "./dynamo-batch.ts";
import { EvaluationMessage } from "./evaluation-queue.ts";
import { mirrorStatus } from "./job-derivations.ts";
import { getJob } from "./jobs.ts";
import { queueUrl, tableName } from "./resource.ts";
import { getSession, listSessions, releaseTask, reserveTask, type SessionItem } from "./sessions.ts";

type Outcome = "sent" | "stale" | "full" | "undelivered";
type Connected = SessionItem & { connectionId: string };

export const capabilities = (agent: AgentInfo): BuilderCapabilities => ({
  systems: agent.systems,
  supportedFeatures: agent.systemFeatures,
  mandatoryFeatures: agent.mandatoryFeatures,
});

const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);
export const buildTaskId = (drvPath: string, attempt: number) => `b-${digest(drvPath)}-${attempt}`;

const canTakeWork = (s: SessionItem): s is Connected =>
  s.connectionId !== undefined && !s.draining && s.runningTasks < s.agent.concurrentTasks;

/**
 * Fills a session's free slots: evaluations first (they make the work), then the build
 * queues it may serve under Nix's rule. Each task is leased to the session with a
 * conditional write before it is sent, so a message received twice, or by two agents,
 * starts one task. Returns the number of tasks given.
 */
export async function dispatchTo(sessionId: string): Promise<number> {
  const session = await getSession(sessionId);
  if (!session || !canTakeWork(session)) return 0;
  let free = session.agent.concurrentTasks - session.runningTasks;
  const caps = capabilities(session.agent);
  const buildQueues = (await listBuildQueues()).filter((q) => canBuild(caps, { system: q.system, requiredFeatures: q.features }));
  // A random order, so an agent serving several queues does not drain one and starve the others.
  for (let i = buildQueues.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [buildQueues[i], buildQueues[j]] = [buildQueues[j]!, buildQueues[i]!];
  }
  const sources = [
    { url: async () => queueUrl("Evaluations"), start: startEvaluation, forget: () => {} },
    ...buildQueues.map((q) => ({ url: () => buildQueueUrl(q.queueKey), start: startBuild, forget: () => forgetBuildQueue(q.queueKey) })),
  ];
  let given = 0;
  for (const source of sources) {
    while (free > 0) {
      const url = await source.url();
      const messages = await receive(url, Math.min(10, free), source.forget);
      if (messages.length === 0) break;
      let stop = false;
      for (const message of messages) {
        // Every received message is deleted or put back: one left in flight would hold up its
        // FIFO group (and so its derivation) until the visibility timeout.
        const outcome: Outcome = stop || free <= 0 ? "full" : await source.start(session, message);
        // An undelivered task is the session's all the same: re-sent when it reconnects.
        if (outcome === "full") await putBack(url, message);
        else await remove(url, message);
        if (outcome === "sent" || outcome === "undelivered") {
          free--;
          given++;
        }
        if (outcome === "undelivered" || outcome === "full") stop = true;
      }
      if (stop) return given;
    }
  }
  return given;
}

async function receive(url: string, max: number, forget: () => void): Promise<Message[]> {
  try {
    const { Messages = [] } = await sqs().send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: max, WaitTimeSeconds: 0 }));
    return Messages;
  } catch (error) {
    if (!isMissingQueue(error)) throw error;
    forget();
    return [];
  }
}

const remove = (url: string, m: Message) => sqs().send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
const putBack = (url: string, m: Message) =>
  sqs().send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));

async function startBuild(session: Connected, message: Message): Promise<Outcome> {
  const { drvPath } = JSON.parse(message.Body ?? "{}") as { drvPath?: string };
  const drv = drvPath ? await getDerivation(drvPath) : undefined;
  if (!drv || drv.status !== "queued" || drv.dueAt) return "stale";
  const taskId = buildTaskId(drv.drvPath, drv.attempt);
  const now = new Date();
  const task = { kind: "build" as const, drvPath: drv.drvPath, attempt: drv.attempt, startedAt: now.toISOString() };
  if (!(await reserveTask(session.sessionId, taskId, task, session.agent.concurrentTasks))) return "full";
  const lease = { taskId, sessionId: session.sessionId, leasedAt: now.toISOString() };
  const leased = await moveDerivation(drv.drvPath, { from: ["queued"], to: "building", set: { lease } }, now);
  if (!leased) {
    await releaseTask(session.sessionId, taskId);
    return "stale";
  }
  await mirrorStatus(drv.drvPath, "building", leased.updatedAt);
  const delivered = await sendToAgent(session.connectionId, buildTask(taskId, leased));
  return delivered ? "sent" : "undelivered";
}

export const buildTask = (taskId: string, drv: { drvPath: string; system: string; requiredFeatures: string[] }) => ({
  type: "build" as const,
  taskId,
  drvPath: drv.drvPath,
  system: drv.system,
  requiredFeatures: drv.requiredFeatures,
});

export const evaluateTask = (job: { jobId: string; repository: string; cloneUrl: string; commit: string; ref?: string; evaluation: { taskId: string } }) => ({
  type: "evaluate" as const,
  taskId: job.evaluation.taskId,
  jobId: job.jobId,
  repository: job.repository,
  cloneUrl: job.cloneUrl,
  commit: job.commit,
  ...(job.ref ? { ref: job.ref } : {}),
});

async function startEvaluation(session: Connected, message: Message): Promise<Outcome> {
  const parsed = EvaluationMessage.safeParse(JSON.parse(message.Body ?? "{}"));
  const job = parsed.success ? await getJob(parsed.data.jobId) : undefined;
  if (!job || job.status !== "evaluating" || job.evaluation.status !== "queued") return "stale";
  const { taskId } = job.evaluation;
  const now = new Date().toISOString();
  const task = { kind: "evaluate" as const, jobId: job.jobId, startedAt: now };
  if (!(await reserveTask(session.sessionId, taskId, task, session.agent.concurrentTasks))) return "full";
  if (!(await leaseEvaluation(job.jobId, session, now))) {
    await releaseTask(session.sessionId, taskId);
    return "stale";
  }
  return (await sendToAgent(session.connectionId, evaluateTask(job))) ? "sent" : "undelivered";
}

async function leaseEvaluation(jobId: string, session: Connected, now: string): Promise<boolean> {
  const written = await unlessConditionFails(
    dynamo().send(
      new UpdateCommand({
        TableName: tableName("Jobs"),
        Key: { jobId },
        UpdateExpression: "SET evaluation.#st = :running, evaluation.sessionId = :session, evaluation.#agent = :host, updatedAt = :now",
        ConditionExpression: "evaluation.#st = :queued AND #status = :evaluating",
        ExpressionAttributeNames: { "#st": "status", "#status": "status", "#agent": "agent" },
        ExpressionAttributeValues: {
          ":running": "running",
          ":queued": "queued",
          ":evaluating": "evaluating",
          ":session": session.sessionId,
          ":host": session.agent.hostname,
          ":now": now,
        },
      }),
    ),
  );
  return written !== undefined;
}

/**
 * Puts a running evaluation back to queued if `sessionId` still holds it. Returns how many
 * times it has been returned (the retry number for the queue's deduplication), or undefined.
 */
export async function returnEvaluation(jobId: string, sessionId: string): Promise<number | undefined> {
  const returned = await unlessConditionFails(
    dynamo().send(
      new UpdateCommand({
        TableName: tableName("Jobs"),
        Key: { jobId },
        UpdateExpression:
          "SET evaluation.#st = :queued, updatedAt = :now ADD evaluation.retries :one REMOVE evaluation.sessionId, evaluation.#agent, evaluation.batchesSeen, evaluation.batches",
        ConditionExpression: "evaluation.#st = :running AND evaluation.sessionId = :session",
        ExpressionAttributeNames: { "#st": "status", "#agent": "agent" },
        ExpressionAttributeValues: { ":queued": "queued", ":running": "running", ":session": sessionId, ":now": new Date().toISOString(), ":one": 1 },
        ReturnValues: "ALL_NEW",
      }),
    ),
  );
  return (returned?.Attributes as { evaluation: { retries: number } } | undefined)?.evaluation.retries;
}

// Queues that got new work during this invocation; `wakeIdleAgents` tells agents once at the end.
const woken = new Set<string>();
let evaluationsWoken = false;

/** Notes that a build queue (or, with no key, the evaluation queue) has new work. */
export function noteNewWork(queueKey?: string): void {
  if (queueKey) woken.add(queueKey);
  else evaluationsWoken = true;
}

/**
 * Gives new work to idle agents that can take it at once, instead of waiting for them to
 * ask: a handler that queued work calls this before it answers.
 */
export async function wakeIdleAgents(): Promise<void> {
  const keys = [...woken].map(parseQueueKey);
  const anyAgent = evaluationsWoken;
  woken.clear();
  evaluationsWoken = false;
  if (keys.length === 0 && !anyAgent) return;
  const idle = (await listSessions()).filter(
    (s): s is Connected =>
      canTakeWork(s) &&
      (anyAgent || keys.some(({ system, features }) => canBuild(capabilities(s.agent), { system, requiredFeatures: features }))),
  );
  // Least busy first, so work spreads; a bounded number per call keeps the fan-out cheap.
  idle.sort((a, b) => a.runningTasks / a.agent.concurrentTasks - b.runningTasks / b.agent.concurrentTasks);
  await Promise.all(idle.slice(0, 16).map((s) => dispatchTo(s.sessionId)));
}

/** What the webhook calls after queueing an evaluation. */
export async function nudgeIdleAgents(): Promise<void> {
  noteNewWork();
  await wakeIdleAgents();
}
