/**
 * The evaluation's safety net, run by the sweeper on quiet jobs (docs/reliability.md,
 * "Evaluations"): a queued evaluation whose message looks lost is sent again; a running one
 * past `NIMBUS_EVALUATION_TIMEOUT_MS` fails, and its agent is told to stop.
 */
import { planResends } from "@nimbus/core";
import { sendToAgent } from "../storage/agent-socket.ts";
import { enqueueEvaluation, EVALUATION_QUEUE, evaluationQueueUrl } from "../storage/evaluation-queue.ts";
import type { JobItem } from "../storage/items.ts";
import { claimEvaluationResend, failEvaluation } from "../storage/jobs.ts";
import { queueDepth } from "../storage/queue-messages.ts";
import { getSessionLoad, releaseTask } from "../storage/sessions.ts";
import { finishJobIfDone } from "./job-finish.ts";
import type { WorkNotes } from "./new-work.ts";

/** Sends again the evaluations of `waiting` (queued past the re-send window) that the queue's depth says were lost. */
export async function resendLostEvaluations(waiting: readonly JobItem[], now: Date, work: WorkNotes): Promise<number> {
  // Their messages may be there, visible again after a receiver died: idle agents are woken for them.
  work.addEvaluation(waiting.length);
  const depth = await queueDepth(evaluationQueueUrl());
  const byId = new Map(waiting.map((job) => [job.jobId, job]));
  const stale = waiting.map((job) => ({ id: job.jobId, queue: EVALUATION_QUEUE, since: job.updatedAt }));
  let sent = 0;
  for (const jobId of planResends(stale, new Map([[EVALUATION_QUEUE, depth]]))) {
    const job = byId.get(jobId)!;
    if (!(await claimEvaluationResend(job, now))) continue;
    await enqueueEvaluation(jobId, job.evaluation.retries ?? 0, now.getTime());
    sent++;
  }
  return sent;
}

/** Fails an evaluation that ran past the timeout, frees its agent's slot and tells the agent to stop; whether this call did. */
export async function timeOutEvaluation(job: JobItem, afterMs: number, now: Date): Promise<boolean> {
  const { taskId, sessionId, agent } = job.evaluation;
  const limit = afterMs % 60_000 === 0 ? `${afterMs / 60_000} min` : `${afterMs / 1000} s`;
  const error = `evaluation timed out after ${limit} on ${agent ?? "its agent"} (NIMBUS_EVALUATION_TIMEOUT_MS); the agent was told to stop`;
  if (!(await failEvaluation(job.jobId, taskId, error, now))) return false;
  if (sessionId) {
    const session = await getSessionLoad(sessionId);
    if (session?.connectionId) await sendToAgent(session.connectionId, { type: "cancel", taskId, reason: "the evaluation timed out" });
    await releaseTask(sessionId, taskId);
  }
  await finishJobIfDone(job.jobId, now);
  return true;
}
