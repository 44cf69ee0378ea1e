import { createHash } from "node:crypto";
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, type Message } from "@aws-sdk/client-sqs";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { canBuild, parseQueueKey, type BuilderCapabilities } from "@nimbus/core";
import type { AgentInfo } from "@nimbus/protocol";
import { sendToAgent } from "./agent-channel.ts";
import { dynamo, sqs } from "./aws-clients.ts";
import { buildQueueUrl, forgetBuildQueue, isMissingQueue, listBuildQueues } from "./build-queues.ts";
import { getConnection, listConnections, releaseTask, reserveTask, type ConnectionItem } from "./connections.ts";
import { getDerivation, moveDerivation } from "./derivations.ts";
import { isConditionFailure } from "./dynamo-batch.ts";
import { EvaluationMessage } from "./evaluation-queue.ts";
import { mirrorStatus } from "./job-derivations.ts";
import { getJob } from "./jobs.ts";
import { queueUrl, tableName } from "./resource.ts";

type Outcome = "sent" | "stale" | "full" | "gone";
type Registered = ConnectionItem & { agent: AgentInfo };

export const capabilities = (agent: AgentInfo): BuilderCapabilities => ({
  systems: agent.systems,
  supportedFeatures: agent.systemFeatures,
  mandatoryFeatures: agent.mandatoryFeatures,
});

const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);
export const buildTaskId = (drvPath: string, attempt: number) => `b-${digest(drvPath)}-${attempt}`;

/**
 * Fills an agent's free slots: evaluations first (they make the work), then the build queues
 * it may serve under Nix's rule. Each task is leased with a conditional write before it is
 * sent, so a message received twice, or by two agents, starts one task. Returns tasks sent.
 */
export async function dispatchTo(connectionId: string): Promise<number> {
  const connection = await getConnection(connectionId);
  if (!connection?.agent) return 0;
  const agent = connection as Registered;
  let free = agent.agent.concurrentTasks - agent.runningTasks;
  if (free <= 0) return 0;
  const caps = capabilities(agent.agent);
  const buildQueues = (await listBuildQueues()).filter((q) => canBuild(caps, { system: q.system, requiredFeatures: q.features }));
  const sources = [
    { url: async () => queueUrl("Evaluations"), start: startEvaluation, forget: () => {} },
    ...buildQueues.map((q) => ({ url: () => buildQueueUrl(q.queueKey), start: startBuild, forget: () => forgetBuildQueue(q.queueKey) })),
  ];
  let sent = 0;
  for (const source of sources) {
    while (free > 0) {
      const url = await source.url();
      const messages = await receive(url, Math.min(10, free), source.forget);
      if (messages.length === 0) break;
      for (const message of messages) {
        const outcome: Outcome = free > 0 ? await source.start(agent, message) : "full";
        if (outcome === "sent" || outcome === "stale") await remove(url, message);
        else await putBack(url, message);
        if (outcome === "sent") {
          free--;
          sent++;
        }
        if (outcome === "gone") return sent;
      }
    }
  }
  return sent;
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

async function startBuild(agent: Registered, message: Message): Promise<Outcome> {
  const { drvPath } = JSON.parse(message.Body ?? "{}") as { drvPath?: string };
  const drv = drvPath ? await getDerivation(drvPath) : undefined;
  if (!drv || drv.status !== "queued") return "stale";
  const taskId = buildTaskId(drv.drvPath, drv.attempt);
  const now = new Date();
  const task = { kind: "build" as const, drvPath: drv.drvPath, attempt: drv.attempt, startedAt: now.toISOString() };
  if (!(await reserveTask(agent.connectionId, taskId, task, agent.agent.concurrentTasks))) return "full";
  const lease = { taskId, connectionId: agent.connectionId, leasedAt: now.toISOString() };
  const leased = await moveDerivation(drv.drvPath, { from: ["queued"], to: "building", set: { lease } }, now);
  if (!leased) {
    await releaseTask(agent.connectionId, taskId);
    return "stale";
  }
  const delivered = await sendToAgent(agent.connectionId, {
    type: "build",
    taskId,
    drvPath: drv.drvPath,
    system: drv.system,
    requiredFeatures: drv.requiredFeatures,
  });
  // Undelivered: the connection is gone, and forgetting it put the build back on its queue.
  if (!delivered) return "gone";
  await mirrorStatus(drv.drvPath, "building", leased.updatedAt);
  return "sent";
}

async function startEvaluation(agent: Registered, message: Message): Promise<Outcome> {
  const parsed = EvaluationMessage.safeParse(JSON.parse(message.Body ?? "{}"));
  const job = parsed.success ? await getJob(parsed.data.jobId) : undefined;
  if (!job || job.status !== "evaluating" || job.evaluation.status !== "queued") return "stale";
  const { taskId } = job.evaluation;
  const now = new Date().toISOString();
  if (!(await reserveTask(agent.connectionId, taskId, { kind: "evaluate", jobId: job.jobId, startedAt: now }, agent.agent.concurrentTasks))) {
    return "full";
  }
  if (!(await leaseEvaluation(job.jobId, agent, now))) {
    await releaseTask(agent.connectionId, taskId);
    return "stale";
  }
  const delivered = await sendToAgent(agent.connectionId, {
    type: "evaluate",
    taskId,
    jobId: job.jobId,
    repository: job.repository,
    cloneUrl: job.cloneUrl,
    commit: job.commit,
    ...(job.ref ? { ref: job.ref } : {}),
  });
  // Undelivered: the connection is gone, and forgetting it returned the evaluation already.
  if (!delivered) return "gone";
  return "sent";
}

async function leaseEvaluation(jobId: string, agent: Registered, now: string): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Jobs"),
        Key: { jobId },
        UpdateExpression: "SET evaluation.#st = :running, evaluation.connectionId = :conn, evaluation.#agent = :host, updatedAt = :now",
        ConditionExpression: "evaluation.#st = :queued AND #status = :evaluating",
        ExpressionAttributeNames: { "#st": "status", "#status": "status", "#agent": "agent" },
        ExpressionAttributeValues: {
          ":running": "running",
          ":queued": "queued",
          ":evaluating": "evaluating",
          ":conn": agent.connectionId,
          ":host": agent.agent.hostname,
          ":now": now,
        },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/**
 * Puts a running evaluation back to queued if `connectionId` still holds it. Returns how many
 * times it has been returned (the retry number for the queue's deduplication), or undefined.
 */
export async function returnEvaluation(jobId: string, connectionId: string): Promise<number | undefined> {
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Jobs"),
        Key: { jobId },
        UpdateExpression:
          "SET evaluation.#st = :queued, updatedAt = :now ADD evaluation.retries :one REMOVE evaluation.connectionId, evaluation.#agent, evaluation.batchesSeen, evaluation.batches",
        ConditionExpression: "evaluation.#st = :running AND evaluation.connectionId = :conn",
        ExpressionAttributeNames: { "#st": "status", "#agent": "agent" },
        ExpressionAttributeValues: { ":queued": "queued", ":running": "running", ":conn": connectionId, ":now": new Date().toISOString(), ":one": 1 },
        ReturnValues: "ALL_NEW",
      }),
    );
    return (Attributes as { evaluation: { retries: number } }).evaluation.retries;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
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
  const keys = [...woken];
  const anyAgent = evaluationsWoken;
  woken.clear();
  evaluationsWoken = false;
  if (keys.length === 0 && !anyAgent) return;
  const idle = (await listConnections()).filter(
    (c): c is Registered =>
      c.agent !== undefined &&
      c.runningTasks < c.agent.concurrentTasks &&
      (anyAgent || keys.some((key) => canBuild(capabilities(c.agent!), { system: parseQueueKey(key).system, requiredFeatures: parseQueueKey(key).features }))),
  );
  // Fewest busy first, so work spreads; a bounded number per call keeps the fan-out cheap.
  idle.sort((a, b) => a.runningTasks / a.agent.concurrentTasks - b.runningTasks / b.agent.concurrentTasks);
  await Promise.all(idle.slice(0, 16).map((c) => dispatchTo(c.connectionId)));
}

/** What the webhook calls after queueing an evaluation. */
export async function nudgeIdleAgents(): Promise<void> {
  noteNewWork();
  await wakeIdleAgents();
}
