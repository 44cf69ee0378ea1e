import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Trigger } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { nudgeIdleAgents } from "./dispatch.ts";
import { unlessConditionFails } from "./dynamo-batch.ts";
import { enqueueEvaluation } from "./evaluation-queue.ts";
import type { JobItem } from "./items.ts";
import { tableName } from "./resource.ts";

/** What a webhook or a rerun asks for: the job's fields that come from the event. */
export interface JobRequest {
  repository: string;
  ref?: string;
  commit: string;
  cloneUrl: string;
  trigger: Trigger;
}

/** Creates a job (once: a second call with the same id only queues again) and queues its evaluation. */
export async function startJob(jobId: string, request: JobRequest, createdAt: string): Promise<void> {
  const job: JobItem = {
    jobId,
    listKey: "job",
    activeShard: "a",
    ...request,
    status: "evaluating",
    createdAt,
    updatedAt: createdAt,
    evaluation: { status: "queued", taskId: `eval-${jobId}` },
  };
  // Already made by an earlier attempt: queueing again is harmless (deduplicated by job id).
  await unlessConditionFails(
    dynamo().send(new PutCommand({ TableName: tableName("Jobs"), Item: job, ConditionExpression: "attribute_not_exists(jobId)" })),
  );
  await enqueueEvaluation(jobId);
  await nudgeIdleAgents();
}
