import { PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { EvaluationDone, EvaluationEvent, EvaluationEvents, ServiceMessage } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { unknownTask } from "./builds.ts";
import { releaseTask, type SessionItem } from "./sessions.ts";
import { queryAll, unlessConditionFails } from "./dynamo-batch.ts";
import { registerDerivation } from "./graph.ts";
import { attributeKey, type JobAttributeItem, type JobItem } from "./items.ts";
import { putJobDerivation } from "./job-derivations.ts";
import { finishJobIfDone, getJob } from "./jobs.ts";
import { tableName } from "./resource.ts";

/** The job whose evaluation `taskId` is, if this session holds it and the job still runs. */
export async function heldEvaluation(sessionId: string, taskId: string): Promise<JobItem | undefined> {
  const jobId = taskId.startsWith("eval-") ? taskId.slice("eval-".length) : undefined;
  const job = jobId ? await getJob(jobId) : undefined;
  const held =
    job?.status === "evaluating" &&
    job.evaluation.taskId === taskId &&
    job.evaluation.status === "running" &&
    job.evaluation.sessionId === sessionId;
  return held ? job : undefined;
}

const unknownEvaluation = (taskId: string) => unknownTask(taskId, "is not an evaluation this agent holds");

/** Bounded parallelism: events of one batch are independent of their order (see graph.ts). */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

async function recordEvent(job: JobItem, event: EvaluationEvent, now: Date): Promise<void> {
  switch (event.kind) {
    case "derivation":
      return registerDerivation(job.jobId, event, { rebuildFailures: job.trigger.rebuildFailures ?? false }, now);
    case "attribute":
    case "attribute-error": {
      const item: JobAttributeItem = {
        jobId: job.jobId,
        attribute: attributeKey(event.path),
        path: event.path,
        ...(event.kind === "attribute"
          ? { drvPath: event.drvPath, attributeType: event.attributeType, needsBuild: event.needsBuild }
          : { error: event.message }),
      };
      await dynamo().send(new PutCommand({ TableName: tableName("JobAttributes"), Item: item }));
      // Outputs already valid: the job shows it, and there is nothing to build.
      if (event.kind === "attribute" && !event.needsBuild) {
        await putJobDerivation(job.jobId, event.drvPath, "cached", now.toISOString());
      }
    }
  }
}

/** One batch of evaluation events: record them, then note the batch (a duplicate is only acknowledged). */
export async function handleEvaluationEvents(session: SessionItem, message: EvaluationEvents): Promise<ServiceMessage> {
  const job = await heldEvaluation(session.sessionId, message.taskId);
  if (!job) return unknownEvaluation(message.taskId);
  const ack: ServiceMessage = { type: "ack", taskId: message.taskId, seq: message.seq };
  if (job.evaluation.batchesSeen?.has(message.seq)) return ack;
  const now = new Date();
  await eachLimited(message.events, 8, (event) => recordEvent(job, event, now));
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName("Jobs"),
      Key: { jobId: job.jobId },
      UpdateExpression: "ADD evaluation.batchesSeen :seq",
      ExpressionAttributeValues: { ":seq": new Set([message.seq]) },
    }),
  );
  await completeEvaluation(job.jobId);
  return ack;
}

/** The end of an evaluation; the job moves on once every batch it announces has been recorded. */
export async function handleEvaluationDone(session: SessionItem, message: EvaluationDone): Promise<ServiceMessage> {
  const ack: ServiceMessage = { type: "result-ack", taskId: message.taskId };
  const job = await heldEvaluation(session.sessionId, message.taskId);
  // The slot is free whatever became of the job (it may have been cancelled meanwhile).
  const released = await releaseTask(session.sessionId, message.taskId);
  if (!job) return released ? ack : unknownEvaluation(message.taskId);
  const failed = message.status === "failed";
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName("Jobs"),
      Key: { jobId: job.jobId },
      UpdateExpression: failed
        ? "SET evaluation.#st = :failed, evaluation.#error = :error, updatedAt = :now"
        : "SET evaluation.batches = :batches, updatedAt = :now",
      ExpressionAttributeNames: failed ? { "#st": "status", "#error": "error" } : undefined,
      ExpressionAttributeValues: failed
        ? { ":failed": "failed", ":error": message.error ?? "evaluation failed", ":now": new Date().toISOString() }
        : { ":batches": message.batches, ":now": new Date().toISOString() },
    }),
  );
  if (failed) await finishJobIfDone(job.jobId);
  else await completeEvaluation(job.jobId);
  return ack;
}

/** running → succeeded when `batches` is known and all of them are recorded; the job then builds. */
async function completeEvaluation(jobId: string): Promise<void> {
  const job = await getJob(jobId);
  const evaluation = job?.evaluation;
  if (!job || evaluation?.status !== "running" || evaluation.batches === undefined) return;
  if ((evaluation.batchesSeen?.size ?? 0) < evaluation.batches) return;
  const attributes = await queryAll<JobAttributeItem>({
    TableName: tableName("JobAttributes"),
    KeyConditionExpression: "jobId = :job",
    ExpressionAttributeValues: { ":job": jobId },
    ConsistentRead: true,
    ProjectionExpression: "#error",
    ExpressionAttributeNames: { "#error": "error" },
  });
  const completed = await unlessConditionFails(
    dynamo().send(
      new UpdateCommand({
        TableName: tableName("Jobs"),
        Key: { jobId },
        UpdateExpression: "SET evaluation.#st = :succeeded, attributeErrors = :errors, #status = :building, updatedAt = :now",
        ConditionExpression: "evaluation.#st = :running AND #status = :evaluating",
        ExpressionAttributeNames: { "#st": "status", "#status": "status" },
        ExpressionAttributeValues: {
          ":succeeded": "succeeded",
          ":running": "running",
          ":building": "building",
          ":evaluating": "evaluating",
          ":errors": attributes.filter((a) => a.error).length,
          ":now": new Date().toISOString(),
        },
      }),
    ),
  );
  if (completed) await finishJobIfDone(jobId);
}
