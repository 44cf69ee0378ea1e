import type { JobHandler, JobStatus } from "@nimbus/protocol";
import type { JobItem } from "./items.ts";
import { exactCountFields, type StatusCounts } from "./job-counts.ts";
import { heldKey, pullRequestKey, SHARD } from "./keys.ts";
import { Jobs } from "./tables.ts";

export const getJob = (jobId: string): Promise<JobItem | undefined> => Jobs.get({ jobId });

/** Creates the job unless it exists; whether this call created it. */
export const createJob = (job: JobItem): Promise<boolean> => Jobs.put(job, { expression: "attribute_not_exists(jobId)" });

/**
 * Sets a job's status if it is still active; false if something else finished it first.
 * `counts`, counted when it ends, replace the counts kept while it ran (storage/job-counts.ts).
 */
export function setJobStatus(jobId: string, status: JobStatus, now = new Date(), counts?: StatusCounts): Promise<boolean> {
  const finished = status !== "evaluating" && status !== "building";
  const countFields = Object.entries(counts ? exactCountFields(counts) : {});
  const setCounts = countFields.map((_, i) => `, #c${i} = :c${i}`).join("");
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: `SET #status = :status, updatedAt = :now${setCounts}${finished ? ", finishedAt = :now REMOVE activeShard" : ""}`,
      ConditionExpression: "#status IN (:evaluating, :building)",
      ExpressionAttributeNames: { "#status": "status", ...Object.fromEntries(countFields.map(([name], i) => [`#c${i}`, name])) },
      ExpressionAttributeValues: {
        ":status": status,
        ":now": now.toISOString(),
        ":evaluating": "evaluating",
        ":building": "building",
        ...Object.fromEntries(countFields.map(([, n], i) => [`:c${i}`, n])),
      },
    },
  );
}

/**
 * evaluating or building → cancelled, with its derivations still to cancel: it stays in the
 * byActivity index (the sweeper goes on with it) until `endCancel`. Whether this call did it.
 */
export function beginCancel(jobId: string, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET #status = :cancelled, updatedAt = :now, finishedAt = :now, cancelling = :yes",
      ConditionExpression: "#status IN (:evaluating, :building)",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":cancelled": "cancelled", ":now": now.toISOString(), ":yes": true, ":evaluating": "evaluating", ":building": "building" },
    },
  );
}

/** Where a cancellation cut short goes on. */
export async function saveCancelProgress(jobId: string, after: string | undefined, now: Date): Promise<void> {
  await Jobs.update(
    { jobId },
    after
      ? {
          UpdateExpression: "SET cancelFrom = :after, updatedAt = :now",
          ConditionExpression: "attribute_exists(cancelling)",
          ExpressionAttributeValues: { ":after": after, ":now": now.toISOString() },
        }
      : { UpdateExpression: "SET updatedAt = :now", ConditionExpression: "attribute_exists(cancelling)", ExpressionAttributeValues: { ":now": now.toISOString() } },
  );
}

/**
 * Every derivation of a cancelled job was looked at: out of the byActivity index, with `counts`
 * (counted after it) replacing those kept while it was cancelled (storage/job-counts.ts).
 */
export async function endCancel(jobId: string, counts: StatusCounts): Promise<void> {
  const countFields = Object.entries(exactCountFields(counts));
  await Jobs.update(
    { jobId },
    {
      UpdateExpression: `SET ${countFields.map((_, i) => `#c${i} = :c${i}`).join(", ")} REMOVE cancelling, cancelFrom, activeShard`,
      ConditionExpression: "attribute_exists(cancelling)",
      ExpressionAttributeNames: Object.fromEntries(countFields.map(([name], i) => [`#c${i}`, name])),
      ExpressionAttributeValues: Object.fromEntries(countFields.map(([, n], i) => [`:c${i}`, n])),
    },
  );
}

/** queued → running for `sessionId`, while the job still evaluates; whether this call leased it. */
export function leaseEvaluation(jobId: string, holder: { sessionId: string; hostname: string }, now: string): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET evaluation.#st = :running, evaluation.sessionId = :session, evaluation.#agent = :host, updatedAt = :now",
      ConditionExpression: "evaluation.#st = :queued AND #status = :evaluating",
      ExpressionAttributeNames: { "#st": "status", "#status": "status", "#agent": "agent" },
      ExpressionAttributeValues: {
        ":running": "running",
        ":queued": "queued",
        ":evaluating": "evaluating",
        ":session": holder.sessionId,
        ":host": holder.hostname,
        ":now": now,
      },
    },
  );
}

/**
 * Puts a running evaluation back to queued if `sessionId` still holds it. Returns how many
 * times it has been returned (the retry number for the queue's deduplication), or undefined.
 */
export async function returnEvaluation(jobId: string, sessionId: string, now = new Date()): Promise<number | undefined> {
  const job = await Jobs.updateReturning(
    { jobId },
    {
      UpdateExpression:
        "SET evaluation.#st = :queued, updatedAt = :now ADD evaluation.retries :one REMOVE evaluation.sessionId, evaluation.#agent, evaluation.batchesSeen, evaluation.batches",
      ConditionExpression: "evaluation.#st = :running AND evaluation.sessionId = :session",
      ExpressionAttributeNames: { "#st": "status", "#agent": "agent" },
      ExpressionAttributeValues: { ":queued": "queued", ":running": "running", ":session": sessionId, ":now": now.toISOString(), ":one": 1 },
    },
    "ALL_NEW",
  );
  return job?.evaluation.retries;
}

/** Notes one batch of evaluation events as recorded (a number set: noting twice is harmless). */
export async function noteEvaluationBatch(jobId: string, seq: number): Promise<void> {
  await Jobs.update(
    { jobId },
    { UpdateExpression: "ADD evaluation.batchesSeen :seq", ExpressionAttributeValues: { ":seq": new Set([seq]) } },
  );
}

/**
 * The evaluating agent's last word: how many batches it sent, or why the evaluation failed,
 * and the caches it could not ask or push to.
 */
export async function endEvaluation(
  jobId: string,
  end: ({ batches: number } | { error: string }) & { cacheProblems?: string[]; handler?: JobHandler },
  now: Date,
): Promise<void> {
  const problems = end.cacheProblems?.length ? end.cacheProblems : undefined;
  // HANDLER is one of DynamoDB's reserved words: always through a name placeholder.
  const setProblems = (problems ? ", evaluation.cacheProblems = :problems" : "") + (end.handler ? ", #handler = :handler" : "");
  const problemValues = { ...(problems ? { ":problems": problems } : {}), ...(end.handler ? { ":handler": end.handler } : {}) };
  await Jobs.update(
    { jobId },
    "error" in end
      ? {
          UpdateExpression: `SET evaluation.#st = :failed, evaluation.#error = :error, updatedAt = :now${setProblems}`,
          ExpressionAttributeNames: { "#st": "status", "#error": "error" },
          ExpressionAttributeValues: { ":failed": "failed", ":error": end.error, ":now": now.toISOString(), ...problemValues },
        }
      : {
          UpdateExpression: `SET evaluation.batches = :batches, updatedAt = :now${setProblems}`,
          ...(end.handler ? { ExpressionAttributeNames: { "#handler": "handler" } } : {}),
          ExpressionAttributeValues: { ":batches": end.batches, ":now": now.toISOString(), ...problemValues },
        },
  );
}

/** running → succeeded, and the job on to building, once; whether this call did it. */
export function completeEvaluation(jobId: string, attributeErrors: number, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET evaluation.#st = :succeeded, attributeErrors = :errors, #status = :building, updatedAt = :now",
      ConditionExpression: "evaluation.#st = :running AND #status = :evaluating",
      ExpressionAttributeNames: { "#st": "status", "#status": "status" },
      ExpressionAttributeValues: {
        ":succeeded": "succeeded",
        ":running": "running",
        ":building": "building",
        ":evaluating": "evaluating",
        ":errors": attributeErrors,
        ":now": now.toISOString(),
      },
    },
  );
}

/** Up to 100 running jobs not updated since `before` (the byActivity index). */
export const quietJobs = (before: Date): Promise<JobItem[]> =>
  Jobs.firstPage({
    IndexName: "byActivity",
    KeyConditionExpression: "activeShard = :a AND updatedAt < :before",
    ExpressionAttributeValues: { ":a": SHARD.activeJob, ":before": before.toISOString() },
    Limit: 100,
  });

/** The held jobs of one commit of one repository (the byHeldCommit index). */
export const heldJobsOf = (repository: string, commit: string): Promise<JobItem[]> =>
  Jobs.query({
    IndexName: "byHeldCommit",
    KeyConditionExpression: "heldKey = :key",
    ExpressionAttributeValues: { ":key": heldKey(repository, commit) },
  });

/** Every job of one pull request (the byPullRequest index). */
export const pullRequestJobs = (repository: string, pullRequest: number): Promise<JobItem[]> =>
  Jobs.query({
    IndexName: "byPullRequest",
    KeyConditionExpression: "pullRequestKey = :key",
    ExpressionAttributeValues: { ":key": pullRequestKey(repository, pullRequest) },
  });

/** held → evaluating, once: the approved job runs (still untrusted); whether this call released it. */
export function releaseHeldJob(jobId: string, approvedBy: string, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET #status = :evaluating, activeShard = :active, updatedAt = :now, #trigger.approvedBy = :by REMOVE heldKey, holdReason, approvalLabel",
      ConditionExpression: "#status = :held",
      ExpressionAttributeNames: { "#status": "status", "#trigger": "trigger" },
      ExpressionAttributeValues: { ":evaluating": "evaluating", ":held": "held", ":active": SHARD.activeJob, ":now": now.toISOString(), ":by": approvedBy },
    },
  );
}

/** held → cancelled, once (its pull request was closed, or someone cancelled it); whether this call did it. */
export function cancelHeldJob(jobId: string, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET #status = :cancelled, updatedAt = :now, finishedAt = :now REMOVE heldKey",
      ConditionExpression: "#status = :held",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":cancelled": "cancelled", ":held": "held", ":now": now.toISOString() },
    },
  );
}

/** Counts one more effect of the job (docs/effects.md): its verdict then waits for its effects. */
export async function addJobEffect(jobId: string): Promise<void> {
  await Jobs.update({ jobId }, { UpdateExpression: "ADD effectCount :one", ExpressionAttributeValues: { ":one": 1 } });
}
