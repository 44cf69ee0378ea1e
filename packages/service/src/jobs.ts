import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { jobOutcome, UNSETTLED } from "@nimbus/core";
import type { DerivationStatus, JobStatus } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { unlessConditionFails } from "./dynamo-batch.ts";
import { jobDerivationRows, jobHasStatus } from "./job-derivations.ts";
import type { JobItem } from "./items.ts";
import { tableName } from "./resource.ts";

export async function getJob(jobId: string): Promise<JobItem | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName("Jobs"), Key: { jobId }, ConsistentRead: true }));
  return Item as JobItem | undefined;
}

const ACTIVE: JobStatus[] = ["evaluating", "building"];
export const isActive = (job: Pick<JobItem, "status">) => ACTIVE.includes(job.status);

/** Sets a job's status if it is still active; false if something else finished it first. */
export async function setJobStatus(jobId: string, status: JobStatus, now = new Date()): Promise<boolean> {
  const finished = status !== "evaluating" && status !== "building";
  const written = await unlessConditionFails(
    dynamo().send(
      new UpdateCommand({
        TableName: tableName("Jobs"),
        Key: { jobId },
        UpdateExpression: `SET #status = :status, updatedAt = :now${finished ? ", finishedAt = :now REMOVE activeShard" : ""}`,
        ConditionExpression: "#status IN (:evaluating, :building)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":status": status, ":now": now.toISOString(), ":evaluating": "evaluating", ":building": "building" },
      }),
    ),
  );
  return written !== undefined;
}

/**
 * Finishes the job if nothing in it can still change. The cheap index check runs on every
 * settle; the consistent full read only when the index says "done" (indexes may lag).
 */
export async function finishJobIfDone(jobId: string): Promise<JobStatus | undefined> {
  const job = await getJob(jobId);
  if (!job || !isActive(job)) return undefined;
  const evaluation = job.evaluation.status;
  if (evaluation !== "succeeded" && evaluation !== "failed") return undefined;
  if (evaluation === "succeeded") {
    for (const status of UNSETTLED) if (await jobHasStatus(jobId, status)) return undefined;
  }
  const counts: Partial<Record<DerivationStatus, number>> = {};
  for (const row of await jobDerivationRows(jobId)) counts[row.status] = (counts[row.status] ?? 0) + 1;
  const outcome = jobOutcome({ evaluation, attributeErrors: job.attributeErrors ?? 0, counts });
  if (outcome === "evaluating" || outcome === "building") return undefined;
  return (await setJobStatus(jobId, outcome)) ? outcome : undefined;
}
