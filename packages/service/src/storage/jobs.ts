import { z } from "zod";
import { compactBatches, MAX_BATCHES_AHEAD, noteBatch, type BatchesSeen } from "@nimbus/core";
import type { JobHandler, JobStatus } from "@nimbus/protocol";
import { anyOf } from "./condition-terms.ts";
import type { JobItem } from "./items.ts";
import { exactCountFields, type StatusCounts } from "./job-counts.ts";
import { heldKey, indexShard, indexShards, pullRequestKey, SHARD } from "./keys.ts";
import { walkQuery, walkShards, type Position, type Walked } from "./index-walk.ts";
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

/**
 * Where a cancellation cut short goes on, with the counts of the rows before that point (saved
 * together, so whoever goes on counts each row once); whether the job is still being cancelled.
 */
export async function saveCancelProgress(jobId: string, after: string | undefined, counts: StatusCounts, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: `SET ${after ? "cancelFrom = :after, " : ""}cancelCounts = :counts, updatedAt = :now`,
      ConditionExpression: "attribute_exists(cancelling)",
      ExpressionAttributeValues: { ...(after ? { ":after": after } : {}), ":counts": counts, ":now": now.toISOString() },
    },
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
      UpdateExpression: `SET ${countFields.map((_, i) => `#c${i} = :c${i}`).join(", ")} REMOVE cancelling, cancelFrom, cancelCounts, activeShard`,
      ConditionExpression: "attribute_exists(cancelling)",
      ExpressionAttributeNames: Object.fromEntries(countFields.map(([name], i) => [`#c${i}`, name])),
      ExpressionAttributeValues: Object.fromEntries(countFields.map(([, n], i) => [`:c${i}`, n])),
    },
  );
}

/** queued → running for `sessionId`, while the job still evaluates; whether this call leased it. */
export function leaseEvaluation(jobId: string, taskId: string, holder: { sessionId: string; hostname: string }, now: string): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression:
        "SET evaluation.#st = :running, evaluation.sessionId = :session, evaluation.#agent = :host, evaluation.leasedAt = :now, updatedAt = :now",
      ConditionExpression: "evaluation.#st = :queued AND evaluation.taskId = :task AND #status = :evaluating",
      ExpressionAttributeNames: { "#st": "status", "#status": "status", "#agent": "agent" },
      ExpressionAttributeValues: {
        ":running": "running",
        ":queued": "queued",
        ":evaluating": "evaluating",
        ":task": taskId,
        ":session": holder.sessionId,
        ":host": holder.hostname,
        ":now": now,
      },
    },
  );
}

/** The evaluation lease a write is conditional on: this task id, running, held by this session. */
export interface EvaluationLease {
  taskId: string;
  sessionId: string;
}

const leaseCondition = "evaluation.#st = :running AND evaluation.taskId = :task AND evaluation.sessionId = :session";
const leaseValues = (lease: EvaluationLease) => ({ ":running": "running", ":task": lease.taskId, ":session": lease.sessionId });

/**
 * Puts a running evaluation back to queued under a new task id (`nextTaskId`), `retries`
 * hand-backs so far, if `lease` is still what runs it: whatever its earlier holder still sends
 * is then refused. Whether this call did it.
 */
export async function returnEvaluation(jobId: string, lease: EvaluationLease, nextTaskId: string, retries: number, now = new Date()): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression:
        "SET evaluation.#st = :queued, evaluation.taskId = :next, evaluation.retries = :retries, updatedAt = :now REMOVE evaluation.sessionId, evaluation.#agent, evaluation.batchesSeen, evaluation.batchesBelow, evaluation.batchesAbove, evaluation.batches, evaluation.leasedAt",
      ConditionExpression: leaseCondition,
      ExpressionAttributeNames: { "#st": "status", "#agent": "agent" },
      ExpressionAttributeValues: { ":queued": "queued", ":next": nextTaskId, ":retries": retries, ":now": now.toISOString(), ...leaseValues(lease) },
    },
  );
}

/** The batches a job's evaluation has recorded (an older job's full set folded in). */
export const batchesSeenOf = (evaluation: JobItem["evaluation"]): BatchesSeen =>
  compactBatches(evaluation.batchesBelow ?? 0, [...(evaluation.batchesAbove ?? []), ...(evaluation.batchesSeen ?? [])]);

/** Conflicting notes (a fold beside them, a full list): each one reads again and tries again, at most this often. */
const NOTE_TRIES = 20;
/** A note that leaves this many batches listed folds the run after `below` into it: one write more every few batches, not one per batch. */
const FOLD_AT = 16;
/** The list a note may add to: a note that finds it longer folds it first (a fold lost to another note leaves it long). */
const LISTED_MAX = MAX_BATCHES_AHEAD + FOLD_AT;

/** Whether the evaluation is still the one this lease holds. */
export const holdsEvaluation = (evaluation: JobItem["evaluation"] | undefined, lease: EvaluationLease): evaluation is JobItem["evaluation"] =>
  evaluation !== undefined && evaluation.status === "running" && evaluation.taskId === lease.taskId && evaluation.sessionId === lease.sessionId;

/** How many batch numbers the item lists (past `below`, folded or not, and an older job's full set). */
const listedOf = (evaluation: JobItem["evaluation"]): number => (evaluation.batchesAbove?.size ?? 0) + (evaluation.batchesSeen?.size ?? 0);

/**
 * Notes one batch of evaluation events as recorded, under the lease it came with: the job as
 * the note left it (or as read, if it was noted before), `lost` when the lease no longer holds,
 * `too-far` past the first missing batch (core `noteBatch`). The note adds the batch's number to
 * the listed set (`ADD`: batches arriving together do not conflict, and none reads the job
 * again); once the list is long, the run after `below` is folded into it by a write conditional
 * on nothing having changed (core `compactBatches`; a fold that loses is left to a later note).
 * So the item stays bounded (docs/reliability.md) with about one write per batch. `job` is a
 * recent read of the job.
 */
export async function noteEvaluationBatch(job: JobItem, lease: EvaluationLease, seq: number): Promise<{ noted: JobItem } | "lost" | "too-far"> {
  let current: JobItem | undefined = job;
  for (let tries = 0; tries < NOTE_TRIES; tries++) {
    if (tries > 0) {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * tries));
      current = await getJob(job.jobId);
    }
    const evaluation = current?.evaluation;
    if (!current || !holdsEvaluation(evaluation, lease)) return "lost";
    const note = noteBatch(batchesSeenOf(evaluation), seq);
    if (note.type === "seen") return { noted: current };
    // The read may be older than the batches noted since: read again before refusing.
    if (note.type === "too-far") {
      if (tries > 0) return "too-far";
      continue;
    }
    if (listedOf(evaluation) >= LISTED_MAX || evaluation.batchesSeen) {
      await foldBatches(job.jobId, lease, evaluation);
      continue;
    }
    const noted = await Jobs.updateReturning(
      { jobId: job.jobId },
      {
        UpdateExpression: "ADD evaluation.batchesAbove :seq",
        ConditionExpression: anyOf([leaseCondition, "attribute_not_exists(evaluation.batchesAbove)"], [leaseCondition, "size(evaluation.batchesAbove) < :max"]),
        ExpressionAttributeNames: { "#st": "status" },
        ExpressionAttributeValues: { ":seq": new Set([seq]), ":max": LISTED_MAX, ...leaseValues(lease) },
      },
      "ALL_NEW",
    );
    if (!noted) continue;
    if (listedOf(noted.evaluation) >= FOLD_AT) await foldBatches(job.jobId, lease, noted.evaluation);
    return { noted };
  }
  throw new Error(`job ${job.jobId}: batch ${seq} could not be noted, ${NOTE_TRIES} tries lost to other batches' notes`);
}

/**
 * Folds the batches listed right after `below` into it (and an older job's full set into the
 * two), conditional on the listed ones being as read: a note or fold beside it wins, and this
 * one changes nothing.
 */
async function foldBatches(jobId: string, lease: EvaluationLease, evaluation: JobItem["evaluation"]): Promise<void> {
  const { below, above } = batchesSeenOf(evaluation);
  const unchanged = [
    evaluation.batchesBelow === undefined ? "attribute_not_exists(evaluation.batchesBelow)" : "evaluation.batchesBelow = :oldBelow",
    evaluation.batchesAbove === undefined ? "attribute_not_exists(evaluation.batchesAbove)" : "size(evaluation.batchesAbove) = :oldAbove",
    evaluation.batchesSeen === undefined ? "attribute_not_exists(evaluation.batchesSeen)" : "size(evaluation.batchesSeen) = :oldSeen",
  ];
  await Jobs.update(
    { jobId },
    {
      UpdateExpression: `SET evaluation.batchesBelow = :below${above.size ? ", evaluation.batchesAbove = :above" : ""} REMOVE evaluation.batchesSeen${above.size ? "" : ", evaluation.batchesAbove"}`,
      ConditionExpression: `${leaseCondition} AND ${unchanged.join(" AND ")}`,
      ExpressionAttributeNames: { "#st": "status" },
      ExpressionAttributeValues: {
        ":below": below,
        ...(above.size ? { ":above": new Set(above) } : {}),
        ...(evaluation.batchesBelow !== undefined ? { ":oldBelow": evaluation.batchesBelow } : {}),
        ...(evaluation.batchesAbove !== undefined ? { ":oldAbove": evaluation.batchesAbove.size } : {}),
        ...(evaluation.batchesSeen !== undefined ? { ":oldSeen": evaluation.batchesSeen.size } : {}),
        ...leaseValues(lease),
      },
    },
  );
}

/**
 * The evaluating agent's last word, under its lease: how many batches it sent, or why the
 * evaluation failed, and the caches it could not ask or push to. Whether the lease still held.
 */
export async function endEvaluation(
  jobId: string,
  lease: EvaluationLease,
  end: ({ batches: number } | { error: string }) & { cacheProblems?: string[]; handler?: JobHandler },
  now: Date,
): Promise<boolean> {
  const problems = end.cacheProblems?.length ? end.cacheProblems : undefined;
  // HANDLER is one of DynamoDB's reserved words: always through a name placeholder.
  const setProblems = (problems ? ", evaluation.cacheProblems = :problems" : "") + (end.handler ? ", #handler = :handler" : "");
  const problemValues = { ...(problems ? { ":problems": problems } : {}), ...(end.handler ? { ":handler": end.handler } : {}) };
  const handlerName: Record<string, string> = end.handler ? { "#handler": "handler" } : {};
  return Jobs.update(
    { jobId },
    "error" in end
      ? {
          UpdateExpression: `SET evaluation.#st = :failed, evaluation.#error = :error, updatedAt = :now${setProblems}`,
          ConditionExpression: leaseCondition,
          ExpressionAttributeNames: { "#st": "status", "#error": "error", ...handlerName },
          ExpressionAttributeValues: { ":failed": "failed", ":error": end.error, ":now": now.toISOString(), ...problemValues, ...leaseValues(lease) },
        }
      : {
          UpdateExpression: `SET evaluation.batches = :batches, updatedAt = :now${setProblems}`,
          ConditionExpression: leaseCondition,
          ExpressionAttributeNames: { "#st": "status", ...handlerName },
          ExpressionAttributeValues: { ":batches": end.batches, ":now": now.toISOString(), ...problemValues, ...leaseValues(lease) },
        },
  );
}

/**
 * Fails an evaluation that is still `taskId` (running, or queued when no agent can take it)
 * with `error`; the job then finishes as failed. Whether this call did it.
 */
export function failEvaluation(jobId: string, taskId: string, error: string, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET evaluation.#st = :failed, evaluation.#error = :error, updatedAt = :now",
      ConditionExpression: "evaluation.#st IN (:queued, :running) AND evaluation.taskId = :task AND #status = :evaluating",
      ExpressionAttributeNames: { "#st": "status", "#error": "error", "#status": "status" },
      ExpressionAttributeValues: { ":failed": "failed", ":error": error, ":now": now.toISOString(), ":queued": "queued", ":running": "running", ":task": taskId, ":evaluating": "evaluating" },
    },
  );
}

/** Claims one re-send of a queued evaluation as read (its `updatedAt` moves on); whether this call did. */
export function claimEvaluationResend(job: Pick<JobItem, "jobId" | "updatedAt" | "evaluation">, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId: job.jobId },
    {
      UpdateExpression: "SET updatedAt = :now",
      ConditionExpression: "evaluation.#st = :queued AND evaluation.taskId = :task AND updatedAt = :seen",
      ExpressionAttributeNames: { "#st": "status" },
      ExpressionAttributeValues: { ":now": now.toISOString(), ":queued": "queued", ":task": job.evaluation.taskId, ":seen": job.updatedAt },
    },
  );
}

/** running → succeeded under `taskId`, and the job on to building, once; whether this call did it. */
export function completeEvaluation(jobId: string, taskId: string, attributeErrors: number, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET evaluation.#st = :succeeded, attributeErrors = :errors, #status = :building, updatedAt = :now",
      ConditionExpression: "evaluation.#st = :running AND evaluation.taskId = :task AND #status = :evaluating",
      ExpressionAttributeNames: { "#st": "status", "#status": "status" },
      ExpressionAttributeValues: {
        ":succeeded": "succeeded",
        ":running": "running",
        ":building": "building",
        ":evaluating": "evaluating",
        ":task": taskId,
        ":errors": attributeErrors,
        ":now": now.toISOString(),
      },
    },
  );
}

/** Running jobs not updated since `before`, quietest first, from `startKey` on (the byActivity index). */
export const quietJobs = (before: Date, startKey?: Position): AsyncGenerator<Walked<JobItem>> =>
  walkShards(
    indexShards(SHARD.activeJob),
    (shard, start) =>
      walkQuery(
        Jobs,
        {
          IndexName: "byActivity",
          KeyConditionExpression: "activeShard = :a AND updatedAt < :before",
          ExpressionAttributeValues: { ":a": shard, ":before": before.toISOString() },
        },
        start,
      ),
    (job) => job.updatedAt,
    startKey,
  );

/** The held jobs of one commit of one repository (the byHeldCommit index). */
export const heldJobsOf = (repository: string, commit: string): Promise<JobItem[]> =>
  Jobs.query({
    IndexName: "byHeldCommit",
    KeyConditionExpression: "heldKey = :key",
    ExpressionAttributeValues: { ":key": heldKey(repository, commit) },
  });

/** Every job of one pull request (the byPullRequest index holds their keys). */
export const pullRequestJobs = async (repository: string, pullRequest: number): Promise<JobItem[]> =>
  jobsInOrder(
    (
      await Jobs.query(
        { IndexName: "byPullRequest", KeyConditionExpression: "pullRequestKey = :key", ExpressionAttributeValues: { ":key": pullRequestKey(repository, pullRequest) } },
        JobKey,
      )
    ).map((key) => key.jobId),
  );

/**
 * What a keys-only index of Jobs holds of a job: its id and the index's own keys (loose: a
 * local table made before the index kept keys only still holds every field).
 */
export const JobKey = z.looseObject({ jobId: z.string() });

/** The jobs of these ids, in this order (read by key, consistently; one removed meanwhile is left out). */
export async function jobsInOrder(jobIds: readonly string[]): Promise<JobItem[]> {
  const found = new Map((await Jobs.batchGet(jobIds.map((jobId) => ({ jobId })))).map((job) => [job.jobId, job]));
  return jobIds.flatMap((jobId) => found.get(jobId) ?? []);
}

/** held → evaluating, once: the approved job runs (still untrusted); whether this call released it. */
export function releaseHeldJob(jobId: string, approvedBy: string, now: Date): Promise<boolean> {
  return Jobs.update(
    { jobId },
    {
      UpdateExpression: "SET #status = :evaluating, activeShard = :active, updatedAt = :now, #trigger.approvedBy = :by REMOVE heldKey, holdReason, approvalLabel",
      ConditionExpression: "#status = :held",
      ExpressionAttributeNames: { "#status": "status", "#trigger": "trigger" },
      ExpressionAttributeValues: { ":evaluating": "evaluating", ":held": "held", ":active": indexShard(SHARD.activeJob, jobId), ":now": now.toISOString(), ":by": approvedBy },
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
