import { PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { DerivationStatus } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { queryAll, unlessConditionFails } from "./dynamo-batch.ts";
import { jobStatusKey, type JobDerivationItem } from "./items.ts";
import { tableName } from "./resource.ts";

/** Records that a job needs a derivation, with the derivation's status as of `at`. */
export async function putJobDerivation(jobId: string, drvPath: string, status: DerivationStatus, at: string) {
  const item: JobDerivationItem & { updatedAt: string } = {
    jobId,
    drvPath,
    status,
    jobStatus: jobStatusKey(jobId, status),
    updatedAt: at,
  };
  await dynamo().send(new PutCommand({ TableName: tableName("JobDerivations"), Item: item }));
}

/**
 * Mirrors a derivation's new status into every job that needs it (for paging and counting
 * by status). A mirror older than the row's is dropped, so late writes cannot undo newer ones.
 * Returns the ids of those jobs.
 */
export async function mirrorStatus(drvPath: string, status: DerivationStatus, at: string): Promise<string[]> {
  const rows = await queryAll<JobDerivationItem>({
    TableName: tableName("JobDerivations"),
    IndexName: "byDrv",
    KeyConditionExpression: "drvPath = :drv",
    ExpressionAttributeValues: { ":drv": drvPath },
    ProjectionExpression: "jobId",
  });
  await Promise.all(
    rows.map(({ jobId }) =>
      unlessConditionFails(
        dynamo().send(
          new UpdateCommand({
            TableName: tableName("JobDerivations"),
            Key: { jobId, drvPath },
            UpdateExpression: "SET #status = :status, jobStatus = :key, updatedAt = :at",
            ConditionExpression: "attribute_exists(jobId) AND (attribute_not_exists(updatedAt) OR updatedAt <= :at)",
            ExpressionAttributeNames: { "#status": "status" },
            ExpressionAttributeValues: { ":status": status, ":key": jobStatusKey(jobId, status), ":at": at },
          }),
        ),
      ),
    ),
  );
  return rows.map((r) => r.jobId);
}

/** Whether a job has at least one derivation in a status (one index read, however big the job). */
export async function jobHasStatus(jobId: string, status: DerivationStatus): Promise<boolean> {
  const { Items = [] } = await dynamo().send(
    new QueryCommand({
      TableName: tableName("JobDerivations"),
      IndexName: "byJobStatus",
      KeyConditionExpression: "jobStatus = :key",
      ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
      Limit: 1,
    }),
  );
  return Items.length > 0;
}

/** Every derivation row of a job read consistently from the table (not the index). */
export async function jobDerivationRows(jobId: string): Promise<JobDerivationItem[]> {
  return queryAll<JobDerivationItem>({
    TableName: tableName("JobDerivations"),
    KeyConditionExpression: "jobId = :job",
    ExpressionAttributeValues: { ":job": jobId },
    ConsistentRead: true,
  });
}
