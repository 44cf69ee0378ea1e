import type { Trigger } from "@nimbus/protocol";
import { enqueueEvaluation } from "../storage/evaluation-queue.ts";
import type { JobItem } from "../storage/items.ts";
import { createJob } from "../storage/jobs.ts";
import { repositoryRefKey, SHARD } from "../storage/keys.ts";
import type { WorkNotes } from "./new-work.ts";
import { evaluationTaskId } from "./tasks/evaluate.ts";

/** What a webhook or a rerun asks for: the job's fields that come from the event. */
export interface JobRequest {
  repository: string;
  ref?: string;
  commit: string;
  cloneUrl: string;
  trigger: Trigger;
}

/** Creates a job (once: a second call with the same id only queues again) and queues its evaluation. */
export async function startJob(jobId: string, request: JobRequest, createdAt: string, work: WorkNotes): Promise<void> {
  const job: JobItem = {
    jobId,
    listKey: SHARD.jobList,
    activeShard: SHARD.activeJob,
    ...request,
    ...(request.ref !== undefined ? { repositoryRef: repositoryRefKey(request.repository, request.ref) } : {}),
    countsKept: true,
    status: "evaluating",
    createdAt,
    updatedAt: createdAt,
    evaluation: { status: "queued", taskId: evaluationTaskId(jobId) },
  };
  // Already made by an earlier attempt: queueing again is harmless (deduplicated by job id).
  await createJob(job);
  await queueEvaluation(jobId, work);
}

/** Queues a job's (first) evaluation, noted as work any idle agent may take. */
export async function queueEvaluation(jobId: string, work: WorkNotes): Promise<void> {
  await enqueueEvaluation(jobId);
  work.addEvaluation();
}
