/**
 * The evaluate task: an agent clones a job's commit, evaluates it and streams the derivations
 * it found (docs/protocol.md, `evaluate`). Its work waits in the Evaluations queue; its lease
 * is the job's `evaluation.sessionId`.
 */
import { evaluationHandBack, type TaskStanding } from "@nimbus/core";
import { EvaluateTask, type EvaluationDone, type EvaluationEvents, type ServiceMessage } from "@nimbus/protocol";
import { z } from "zod";
import { enqueueEvaluation, EVALUATION_QUEUE, evaluationQueueUrl } from "../../storage/evaluation-queue.ts";
import type { JobItem } from "../../storage/items.ts";
import { endEvaluation, failEvaluation, getJob, leaseEvaluation, noteEvaluationBatch, returnEvaluation } from "../../storage/jobs.ts";
import { EvaluationMessage, parseMessageBody } from "../../storage/queue-messages.ts";
import { releaseTask } from "../../storage/sessions.ts";
import { timing } from "../../platform/timing.ts";
import { completeEvaluationIfAllIn, recordEvents } from "../evaluation-ingest.ts";
import { finishJobIfDone } from "../job-finish.ts";
import type { WorkNotes } from "../new-work.ts";
import { answer, unknownTask, type ReportInput, type TaskAnswer, type TaskHolder, type TaskKind } from "./task-kind.ts";

/** What a session records of an evaluation it holds. */
export const EvaluateRecord = z.strictObject({ kind: z.literal("evaluate"), jobId: z.string(), startedAt: z.string() });
export type EvaluateRecord = z.infer<typeof EvaluateRecord>;

/**
 * An evaluation's task id names its job and its attempt (`eval-<job>` first, `eval-<job>.<n>`
 * after n hand-backs), so what an earlier holder still sends never counts for a later attempt.
 */
export const evaluationTaskId = (jobId: string, retries = 0) => `eval-${jobId}${retries ? `.${retries}` : ""}`;
const jobOfTask = (taskId: string) => (taskId.startsWith("eval-") ? taskId.slice("eval-".length).split(".")[0] : undefined);

export const evaluateTaskMessage = (job: Pick<JobItem, "jobId" | "repository" | "cloneUrl" | "commit" | "ref" | "evaluation">): EvaluateTask => ({
  type: "evaluate",
  taskId: job.evaluation.taskId,
  jobId: job.jobId,
  repository: job.repository,
  cloneUrl: job.cloneUrl,
  commit: job.commit,
  ...(job.ref ? { ref: job.ref } : {}),
});

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

/** The batch holds a part another job's running evaluation is still registering: not acknowledged, so the agent sends it again. */
const PART_LATER = (taskId: string, seq: number): ServiceMessage => ({
  type: "error",
  code: "retry-later",
  message: `batch ${seq}: a derivation in it is being registered by another job's evaluation, which reports its own parts; the batch is not acknowledged — send it again later`,
  fatal: false,
  taskId,
});

/**
 * One batch of evaluation events: record them, then note the batch under the lease it came
 * with (a duplicate is only acknowledged; a batch of an attempt handed elsewhere meanwhile is
 * refused, and counts for nothing).
 */
async function evaluationEvents({ session, message, now, work }: ReportInput<EvaluationEvents, EvaluateRecord>): Promise<TaskAnswer> {
  const job = await heldEvaluation(session.sessionId, message.taskId);
  if (!job) return answer(false, unknownEvaluation(message.taskId));
  const lease = { taskId: message.taskId, sessionId: session.sessionId };
  const ack = { type: "ack", taskId: message.taskId, seq: message.seq } as const;
  if (job.evaluation.batchesSeen?.has(message.seq)) return answer(false, ack);
  if (!(await recordEvents(job, message.events, work, now))) return answer(false, PART_LATER(message.taskId, message.seq));
  if (!(await noteEvaluationBatch(job.jobId, lease, message.seq))) return answer(false, unknownEvaluation(message.taskId));
  await completeEvaluationIfAllIn(job.jobId, now);
  return answer(false, ack);
}

/** The end of an evaluation, under its lease; the job moves on once every batch it announces has been recorded. */
async function evaluationDone({ session, message, now }: ReportInput<EvaluationDone, EvaluateRecord>): Promise<TaskAnswer> {
  const ack = { type: "result-ack", taskId: message.taskId } as const;
  const job = await heldEvaluation(session.sessionId, message.taskId);
  // The slot is free whatever became of the job (it may have been cancelled meanwhile).
  const released = await releaseTask(session.sessionId, message.taskId);
  if (!job) return answer(true, released ? ack : unknownEvaluation(message.taskId));
  const lease = { taskId: message.taskId, sessionId: session.sessionId };
  const end = message.status === "failed" ? { error: message.error ?? "evaluation failed" } : { batches: message.batches };
  if (!(await endEvaluation(job.jobId, lease, end, now))) return answer(true, released ? ack : unknownEvaluation(message.taskId));
  if (message.status === "failed") await finishJobIfDone(job.jobId);
  else await completeEvaluationIfAllIn(job.jobId, now);
  return answer(true, ack);
}

/** Running for the holder under this task id, queued for it (a dispatch may be leasing it), or gone. */
async function standing(taskId: string, record: EvaluateRecord, holder: TaskHolder): Promise<{ standing: TaskStanding; message?: EvaluateTask }> {
  const job = await getJob(record.jobId);
  const evaluation = job?.evaluation;
  if (!job || job.status !== "evaluating" || evaluation?.taskId !== taskId) return { standing: "gone" };
  if (evaluation.status === "running" && evaluation.sessionId === holder.sessionId) return { standing: "leased", message: evaluateTaskMessage(job) };
  return { standing: evaluation.status === "queued" ? "pending" : "gone" };
}

/**
 * The holder left or was lost: the evaluation goes back on its queue under a new task id, or
 * fails once it has been handed back too often (core `evaluationHandBack`).
 */
async function handBack(taskId: string, record: EvaluateRecord, holder: TaskHolder, reason: string, work: WorkNotes): Promise<void> {
  const job = await getJob(record.jobId);
  const evaluation = job?.evaluation;
  if (!job || evaluation?.taskId !== taskId || evaluation.status !== "running" || evaluation.sessionId !== holder.sessionId) return;
  const decision = evaluationHandBack(evaluation.retries ?? 0, timing().maxEvaluationAttempts, `its agent ${holder.agent.hostname} ${reason.replace(/^its agent /, "")}`);
  if (decision.type === "give-up") {
    if (await failEvaluation(job.jobId, taskId, decision.reason, new Date())) await finishJobIfDone(job.jobId);
    return;
  }
  const lease = { taskId, sessionId: holder.sessionId };
  if (!(await returnEvaluation(job.jobId, lease, evaluationTaskId(job.jobId, decision.retries), decision.retries))) return;
  await enqueueEvaluation(job.jobId, decision.retries);
  work.addEvaluation();
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
    const taskId = job.evaluation.taskId;
    return {
      taskId,
      record: { kind: "evaluate", jobId: job.jobId, startedAt },
      lease: async (holder) =>
        (await leaseEvaluation(job.jobId, taskId, { sessionId: holder.sessionId, hostname: holder.agent.hostname }, startedAt))
          ? evaluateTaskMessage(job)
          : undefined,
    };
  },
  async resume(taskId, record, holder) {
    return (await standing(taskId, record, holder)).message;
  },
  standing,
  handBack,
  reports: { "evaluation-events": evaluationEvents, "evaluation-done": evaluationDone },
} satisfies TaskKind<"evaluate", EvaluateRecord, EvaluateTask>;
