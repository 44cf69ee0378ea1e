import type { JobHandler, Trigger } from "@nimbus/protocol";
import { enqueueEvaluation } from "../storage/evaluation-queue.ts";
import type { JobItem } from "../storage/items.ts";
import { createJob } from "../storage/jobs.ts";
import { heldKey, indexShard, pullRequestKey, repositoryRefKey, SHARD } from "../storage/keys.ts";
import type { WorkNotes } from "./new-work.ts";
import { evaluationTaskId } from "./tasks/task-ids.ts";

/** What a webhook or a rerun asks for: the job's fields that come from the event. */
export interface JobRequest {
  repository: string;
  ref?: string;
  commit: string;
  cloneUrl: string;
  trigger: Trigger;
  /** Where GitHub stands (docs/github.md): reports go to a repository on GitHub, a private one is fetched with a token. */
  github?: { onGithub: boolean; private: boolean; installationId?: number };
  /** A fork's commit: no secrets, no effects. */
  untrusted?: boolean;
  /** A fork's job waiting for approval: created `held`, and not evaluated until approved. */
  hold?: { reason: string; approvalLabel?: string };
  /** The `herculesCI` handler it evaluates (flow/job-handlers.ts); absent for a push's first job. */
  handler?: JobHandler;
  /** For a handler's job made beside a push's first job: that job. */
  pushJobId?: string;
  /** The repository's default branch, as the event said it (docs/effects.md). */
  defaultBranch?: string;
}

/**
 * Creates a job (once: a second call with the same id only queues again) and queues its
 * evaluation — or, for a held fork, only creates it.
 */
export async function startJob(jobId: string, request: JobRequest, createdAt: string, work: WorkNotes): Promise<void> {
  const { github, untrusted, hold, ...fields } = request;
  const job: JobItem = {
    jobId,
    listKey: SHARD.jobList,
    ...(hold ? { heldKey: heldKey(request.repository, request.commit), holdReason: hold.reason, ...(hold.approvalLabel ? { approvalLabel: hold.approvalLabel } : {}) } : { activeShard: indexShard(SHARD.activeJob, jobId) }),
    ...fields,
    ...(request.ref !== undefined ? { repositoryRef: repositoryRefKey(request.repository, request.ref) } : {}),
    countsKept: true,
    ...(github?.onGithub ? { onGithub: true } : {}),
    ...(github?.private ? { private: true } : {}),
    ...(github?.installationId !== undefined ? { installationId: github.installationId } : {}),
    ...(untrusted ? { untrusted: true } : {}),
    ...(request.trigger.pullRequest !== undefined ? { pullRequestKey: pullRequestKey(request.repository, request.trigger.pullRequest) } : {}),
    status: hold ? "held" : "evaluating",
    createdAt,
    updatedAt: createdAt,
    evaluation: { status: "queued", taskId: evaluationTaskId(jobId) },
  };
  // Already made by an earlier attempt: queueing again is harmless (deduplicated by job id).
  await createJob(job);
  work.addChangedJob(jobId);
  if (!hold) await queueEvaluation(jobId, work);
}

/** Queues a job's (first) evaluation, noted as work any idle agent may take. */
export async function queueEvaluation(jobId: string, work: WorkNotes): Promise<void> {
  await enqueueEvaluation(jobId);
  work.addEvaluation();
}
