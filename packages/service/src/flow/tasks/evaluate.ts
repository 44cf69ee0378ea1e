/**
 * The evaluate task: an agent clones a job's commit, evaluates it and streams the derivations
 * it found (docs/protocol.md, `evaluate`). Its work waits in the Evaluations queue; its lease
 * is the job's `evaluation.sessionId`.
 */
import { evaluationHandBack, MAX_BATCHES_AHEAD, noteBatch, type TaskStanding } from "@nimbus/core";
import { cacheProblem, EvaluateTask, type CloneCredential, type EvaluationDone, type EvaluationEvents, type ServiceMessage } from "@nimbus/protocol";
import { z } from "zod";
import { enqueueEvaluation, EVALUATION_QUEUE, evaluationQueueUrl } from "../../storage/evaluation-queue.ts";
import type { JobItem } from "../../storage/items.ts";
import { batchesSeenOf, endEvaluation, failEvaluation, getJob, holdsEvaluation, leaseEvaluation, noteEvaluationBatch, returnEvaluation as requeueEvaluation, type EvaluationLease } from "../../storage/jobs.ts";
import { EvaluationMessage, parseMessageBody } from "../../storage/queue-messages.ts";
import { noteCacheReports, releaseTask, systemsWithSessions } from "../../storage/sessions.ts";
import { timing } from "../../platform/timing.ts";
import { completeEvaluationIfAllIn, recordEvents } from "../evaluation-ingest.ts";
import { cloneCredentialFor } from "../clone-credentials.ts";
import { finishJobIfDone } from "../job-finish.ts";
import { startHandlerJobs } from "../job-handlers.ts";
import { recordSchedules } from "../schedules.ts";
import { reportJob } from "../job-reports.ts";
import type { WorkNotes } from "../new-work.ts";
import { answer, unknownTask, type ReportInput, type TaskAnswer, type TaskHolder, type TaskKind } from "./task-kind.ts";
import { evaluationTaskId } from "./task-ids.ts";

/** What a session records of an evaluation it holds. */
export const EvaluateRecord = z.strictObject({ kind: z.literal("evaluate"), jobId: z.string(), startedAt: z.string() });
export type EvaluateRecord = z.infer<typeof EvaluateRecord>;

/** An evaluation's task id names its job, and after hand-backs its attempt (tasks/task-ids.ts). */
const jobOfTask = (taskId: string) => (taskId.startsWith("eval-") ? taskId.slice("eval-".length).split(".")[0] : undefined);

export const evaluateTaskMessage = (
  job: Pick<JobItem, "jobId" | "repository" | "cloneUrl" | "commit" | "ref" | "evaluation" | "untrusted" | "handler">,
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
  ...(job.handler ? { handler: job.handler } : {}),
  ...(systems.length > 0 ? { systems: [...systems] } : {}),
});

/**
 * The systems a job is evaluated for: every system an agent of the cluster can build (the
 * evaluator's own among them), so a flake's `checks.<system>` do not depend on which agent
 * happened to evaluate it. At most the protocol's 64.
 */
async function clusterSystems(holder: TaskHolder): Promise<string[]> {
  const systems = new Set([...holder.agent.systems, ...(await systemsWithSessions())]);
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
    const lease = { taskId: job.evaluation.taskId, sessionId: holder.sessionId };
    const failure = { error: `cannot fetch ${job.repository}, a private repository: no clone token from GitHub (${why})` };
    if (await endEvaluation(job.jobId, lease, failure, now)) await finishJobIfDone(job.jobId, now);
    await reportJob(job.jobId, now);
    return undefined;
  }
}

/** The job whose evaluation `taskId` is, if this session holds it and the job still runs. */
async function heldEvaluation(sessionId: string, taskId: string): Promise<JobItem | undefined> {
  const jobId = jobOfTask(taskId);
  const job = jobId ? await getJob(jobId) : undefined;
  return job?.status === "evaluating" && holdsEvaluation(job.evaluation, { taskId, sessionId }) ? job : undefined;
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

/** A batch numbered too far past the lowest one not yet received (core `noteBatch`): not acknowledged, so the agent sends it again. */
const TOO_FAR = (taskId: string, seq: number, lowestMissing: number): ServiceMessage => ({
  type: "error",
  code: "retry-later",
  message: `batch ${seq}: batch ${lowestMissing} has not arrived yet, and at most ${MAX_BATCHES_AHEAD} batches past it are recorded; the batch is not acknowledged — send it again later`,
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
  work.addChangedJob(job.jobId);
  const ack = { type: "ack", taskId: message.taskId, seq: message.seq } as const;
  const seen = noteBatch(batchesSeenOf(job.evaluation), message.seq);
  if (seen.type === "seen") return answer(false, ack);
  if (seen.type === "too-far") return answer(false, TOO_FAR(message.taskId, message.seq, seen.lowestMissing));
  if (!(await recordEvents(job, message.events, work, now))) return answer(false, PART_LATER(message.taskId, message.seq));
  const noted = await noteEvaluationBatch(job, lease, message.seq);
  if (noted === "lost") return answer(false, unknownEvaluation(message.taskId));
  if (noted === "too-far") return answer(false, TOO_FAR(message.taskId, message.seq, message.seq));
  // The job as the note left it: an evaluation-done written before the note shows in it, and one written after reads the note.
  await completeEvaluationIfAllIn(job.jobId, now, work, noted.noted);
  return answer(false, ack);
}

/**
 * The end of an evaluation, under its lease; the job moves on once every batch it announces has
 * been recorded. The slot is given back last: while the evaluation runs, its session holds it
 * (the sweeper queues again a running evaluation whose session does not).
 */
async function evaluationDone({ session, message, now, work }: ReportInput<EvaluationDone, EvaluateRecord>): Promise<TaskAnswer> {
  const ack = { type: "result-ack", taskId: message.taskId } as const;
  const job = await heldEvaluation(session.sessionId, message.taskId);
  let ended = false;
  if (job) {
    const lease = { taskId: message.taskId, sessionId: session.sessionId };
    const reports = message.caches ?? [];
    await noteCacheReports(session, reports, now);
    const cacheProblems = reports.flatMap((r) => cacheProblem(r) ?? []);
    let end: Parameters<typeof endEvaluation>[2];
    if (message.status === "failed") end = { error: message.error ?? "evaluation failed", cacheProblems };
    else {
      // The push's first job learns which handler it walked; the push's other handlers get jobs of their own.
      const walked = message.config?.walked;
      const handler = !job.handler && walked !== undefined ? { kind: "onPush" as const, name: walked } : undefined;
      if (message.config) {
        for (const id of await startHandlerJobs(job, message.config, work, now)) work.addChangedJob(id);
        await recordSchedules(job, message.config, now);
      }
      end = { batches: message.batches, cacheProblems, ...(handler ? { handler } : {}) };
    }
    ended = await endEvaluation(job.jobId, lease, end, now);
    if (ended) {
      work.addChangedJob(job.jobId);
      if (message.status === "failed") await finishJobIfDone(job.jobId, now, work);
      else await completeEvaluationIfAllIn(job.jobId, now, work);
    }
  }
  // The slot is free whatever became of the job (it may have been cancelled meanwhile).
  const released = await releaseTask(session.sessionId, message.taskId);
  return answer(true, ended || released ? ack : unknownEvaluation(message.taskId));
}

/**
 * A running evaluation whose holder (`lease`) left or was lost goes back on its queue under a
 * new task id, or fails once it has been handed back too often (core `evaluationHandBack`);
 * nothing happens unless `lease` still runs it. Whether it moved.
 */
export async function returnEvaluation(jobId: string, lease: EvaluationLease, reason: string, work: WorkNotes): Promise<boolean> {
  const job = await getJob(jobId);
  const evaluation = job?.evaluation;
  if (!job || job.status !== "evaluating" || evaluation?.taskId !== lease.taskId || evaluation.status !== "running" || evaluation.sessionId !== lease.sessionId) return false;
  const decision = evaluationHandBack(evaluation.retries ?? 0, timing().maxEvaluationAttempts, reason);
  if (decision.type === "give-up") {
    if (!(await failEvaluation(job.jobId, lease.taskId, decision.reason, new Date()))) return false;
    await finishJobIfDone(job.jobId);
    work.addChangedJob(job.jobId);
    return true;
  }
  if (!(await requeueEvaluation(job.jobId, lease, evaluationTaskId(job.jobId, decision.retries), decision.retries))) return false;
  await enqueueEvaluation(job.jobId, decision.retries);
  work.addEvaluation();
  return true;
}

/** Running for the holder under this task id, queued for it (a dispatch may be leasing it), or gone. */
async function standing(taskId: string, record: EvaluateRecord, holder: TaskHolder): Promise<TaskStanding> {
  const job = await getJob(record.jobId);
  const evaluation = job?.evaluation;
  if (!job || job.status !== "evaluating" || evaluation?.taskId !== taskId) return "gone";
  if (evaluation.status === "running" && evaluation.sessionId === holder.sessionId) return "leased";
  return evaluation.status === "queued" ? "pending" : "gone";
}

/** The holder left or was lost: its evaluation goes back (`returnEvaluation`). */
async function handBack(taskId: string, record: EvaluateRecord, holder: TaskHolder, reason: string, work: WorkNotes): Promise<void> {
  await returnEvaluation(record.jobId, { taskId, sessionId: holder.sessionId }, `its agent ${holder.agent.hostname} ${reason.replace(/^its agent /, "")}`, work);
}

export const evaluateKind = {
  kind: "evaluate",
  message: EvaluateTask,
  record: EvaluateRecord,
  // Rank 0: evaluations come before builds, since they make the work.
  sources: async () => [{ kind: "evaluate", queue: EVALUATION_QUEUE, rank: 0, rare: true }],
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
  standing,
  handBack,
  reports: { "evaluation-events": evaluationEvents, "evaluation-done": evaluationDone },
} satisfies TaskKind<"evaluate", EvaluateRecord, EvaluateTask>;
