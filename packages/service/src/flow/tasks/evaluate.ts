/**
 * The evaluate task: an agent clones a job's commit, evaluates it and streams the derivations
 * it found (docs/protocol.md, `evaluate`). Its work waits in the Evaluations queue; its lease
 * is the job's `evaluation.sessionId`.
 */
import { cacheProblem, EvaluateTask, type CloneCredential, type EvaluationDone, type EvaluationEvents } from "@nimbus/protocol";
import { z } from "zod";
import { enqueueEvaluation, EVALUATION_QUEUE, evaluationQueueUrl } from "../../storage/evaluation-queue.ts";
import type { JobItem } from "../../storage/items.ts";
import { endEvaluation, getJob, leaseEvaluation, noteEvaluationBatch, returnEvaluation as requeueEvaluation } from "../../storage/jobs.ts";
import { EvaluationMessage, parseMessageBody } from "../../storage/queue-messages.ts";
import { listSessionLoads, noteCacheReports, releaseTask } from "../../storage/sessions.ts";
import { completeEvaluationIfAllIn, recordEvents } from "../evaluation-ingest.ts";
import { cloneCredentialFor } from "../clone-credentials.ts";
import { finishJobIfDone } from "../job-finish.ts";
import { reportJob } from "../job-reports.ts";
import type { WorkNotes } from "../new-work.ts";
import { answer, unknownTask, type ReportInput, type TaskAnswer, type TaskHolder, type TaskKind } from "./task-kind.ts";

/** What a session records of an evaluation it holds. */
export const EvaluateRecord = z.strictObject({ kind: z.literal("evaluate"), jobId: z.string(), startedAt: z.string() });
export type EvaluateRecord = z.infer<typeof EvaluateRecord>;

/** An evaluation's task id names its job. */
export const evaluationTaskId = (jobId: string) => `eval-${jobId}`;
const jobOfTask = (taskId: string) => (taskId.startsWith("eval-") ? taskId.slice("eval-".length) : undefined);

export const evaluateTaskMessage = (
  job: Pick<JobItem, "jobId" | "repository" | "cloneUrl" | "commit" | "ref" | "evaluation" | "untrusted">,
  cloneCredential?: CloneCredential,
  systems: readonly string[] = [],
): EvaluateTask => ({
  type: "evaluate",
  taskId: job.evaluation.taskId,
  jobId: job.jobId,
  repository: job.repository,
  cloneUrl: job.cloneUrl,
  commit: job.commit,
  ...(job.ref ? { ref: job.ref } : {}),
  ...(cloneCredential ? { cloneCredential } : {}),
  ...(job.untrusted ? { untrusted: true } : {}),
  ...(systems.length > 0 ? { systems: [...systems] } : {}),
});

/**
 * The systems a job is evaluated for: every system an agent of the cluster can build (the
 * evaluator's own among them), so a flake's `checks.<system>` do not depend on which agent
 * happened to evaluate it. At most the protocol's 64.
 */
async function clusterSystems(holder: TaskHolder): Promise<string[]> {
  const sessions = (await listSessionLoads()).filter((s) => !s.draining);
  const systems = new Set([...holder.agent.systems, ...sessions.flatMap((s) => s.agent.systems)]);
  systems.delete("builtin");
  return [...systems].sort().slice(0, 64);
}

/**
 * The task message as it is sent (a lease, or a resume after a reconnect): a private
 * repository's gets a clone credential minted now, never stored. When none can be had the
 * evaluation fails, saying why, rather than failing later in git with less to say.
 */
async function sendableTask(job: JobItem, holder: TaskHolder, now: Date): Promise<EvaluateTask | undefined> {
  try {
    return evaluateTaskMessage(job, await cloneCredentialFor(job), await clusterSystems(holder));
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    await endEvaluation(job.jobId, { error: `cannot fetch ${job.repository}, a private repository: no clone token from GitHub (${why})` }, now);
    await finishJobIfDone(job.jobId, now);
    await reportJob(job.jobId, now);
    return undefined;
  }
}

/** The job whose evaluation `taskId` is, if this session holds it and the job still runs. */
async function heldEvaluation(sessionId: string, taskId: string): Promise<JobItem | undefined> {
  const jobId = jobOfTask(taskId);
  const job = jobId ? await getJob(jobId) : undefined;
  const held =
    job?.status === "evaluating" &&
    job.evaluation.taskId === taskId &&
    job.evaluation.status === "running" &&
    job.evaluation.sessionId === sessionId;
  return held ? job : undefined;
}

const unknownEvaluation = (taskId: string) => unknownTask(taskId, "is not an evaluation this agent holds");

/** One batch of evaluation events: record them, then note the batch (a duplicate is only acknowledged). */
async function evaluationEvents({ session, message, now, work }: ReportInput<EvaluationEvents, EvaluateRecord>): Promise<TaskAnswer> {
  const job = await heldEvaluation(session.sessionId, message.taskId);
  if (!job) return answer(false, unknownEvaluation(message.taskId));
  work.addChangedJob(job.jobId);
  const ack = { type: "ack", taskId: message.taskId, seq: message.seq } as const;
  if (job.evaluation.batchesSeen?.has(message.seq)) return answer(false, ack);
  await recordEvents(job, message.events, work, now);
  await noteEvaluationBatch(job.jobId, message.seq);
  await completeEvaluationIfAllIn(job.jobId, now);
  return answer(false, ack);
}

/**
 * The end of an evaluation; the job moves on once every batch it announces has been recorded.
 * The slot is given back last: while the evaluation runs, its session holds it (the sweeper
 * queues again a running evaluation whose session does not).
 */
async function evaluationDone({ session, message, now, work }: ReportInput<EvaluationDone, EvaluateRecord>): Promise<TaskAnswer> {
  const ack = { type: "result-ack", taskId: message.taskId } as const;
  const job = await heldEvaluation(session.sessionId, message.taskId);
  if (job) {
    work.addChangedJob(job.jobId);
    const reports = message.caches ?? [];
    await noteCacheReports(session.sessionId, reports, now);
    const cacheProblems = reports.flatMap((r) => cacheProblem(r) ?? []);
    if (message.status === "failed") {
      await endEvaluation(job.jobId, { error: message.error ?? "evaluation failed", cacheProblems }, now);
      await finishJobIfDone(job.jobId);
    } else {
      await endEvaluation(job.jobId, { batches: message.batches, cacheProblems }, now);
      await completeEvaluationIfAllIn(job.jobId, now);
    }
  }
  // The slot is free whatever became of the job (it may have been cancelled meanwhile).
  const released = await releaseTask(session.sessionId, message.taskId);
  return answer(true, job || released ? ack : unknownEvaluation(message.taskId));
}

/** Puts a running evaluation back on the queue if `sessionId` still holds its lease; whether it did. */
export async function returnEvaluation(jobId: string, sessionId: string, work: WorkNotes): Promise<boolean> {
  const retry = await requeueEvaluation(jobId, sessionId);
  if (retry === undefined) return false;
  await enqueueEvaluation(jobId, retry);
  work.addEvaluation();
  return true;
}

export const evaluateKind = {
  kind: "evaluate",
  message: EvaluateTask,
  record: EvaluateRecord,
  // Rank 0: evaluations come before builds, since they make the work.
  sources: async () => [{ kind: "evaluate", queue: EVALUATION_QUEUE, rank: 0 }],
  queueUrl: async () => evaluationQueueUrl(),
  forgetQueue: () => {},
  async claim(message, now) {
    const { jobId } = parseMessageBody(EVALUATION_QUEUE, message, EvaluationMessage);
    const job = await getJob(jobId);
    if (!job || job.status !== "evaluating" || job.evaluation.status !== "queued") return undefined;
    const startedAt = now.toISOString();
    return {
      taskId: job.evaluation.taskId,
      record: { kind: "evaluate", jobId: job.jobId, startedAt },
      lease: async (holder) =>
        (await leaseEvaluation(job.jobId, { sessionId: holder.sessionId, hostname: holder.agent.hostname }, startedAt))
          ? sendableTask(job, holder, now)
          : undefined,
    };
  },
  holds: async (taskId, record, holder) => (await heldEvaluation(holder.sessionId, taskId))?.jobId === record.jobId,
  async resume(taskId, record, holder) {
    // Only while the job still evaluates: a cancelled job's evaluation is not sent again.
    const job = await heldEvaluation(holder.sessionId, taskId);
    return job?.jobId === record.jobId ? sendableTask(job, holder, new Date()) : undefined;
  },
  async handBack(_taskId, record, holder, _reason, work) {
    await returnEvaluation(record.jobId, holder.sessionId, work);
  },
  reports: { "evaluation-events": evaluationEvents, "evaluation-done": evaluationDone },
} satisfies TaskKind<"evaluate", EvaluateRecord, EvaluateTask>;
