import type { DerivationStatus } from "@nimbus/protocol";
import { JobDerivationItem } from "./items.ts";
import { noteCountMove } from "./job-counts.ts";
import { jobStatusKey } from "./keys.ts";
import { JobDerivations } from "./tables.ts";

/** Records that a job needs a derivation, with the derivation's status as of `at`. */
export async function putJobDerivation(jobId: string, drvPath: string, status: DerivationStatus, at: string): Promise<void> {
  const item: JobDerivationItem = { jobId, drvPath, status, jobStatus: jobStatusKey(jobId, status), updatedAt: at };
  const replaced = await JobDerivations.putReplacing(item, OldStatus);
  await noteCountMove(jobId, replaced?.status, status);
}

/** What a write of a row tells of the status it replaced. */
const OldStatus = JobDerivationItem.pick({ status: true }).partial();

/** The ids of every job that needs a derivation (the byDrv index). */
export async function jobsNeeding(drvPath: string): Promise<string[]> {
  const rows = await JobDerivations.query(
    {
      IndexName: "byDrv",
      KeyConditionExpression: "drvPath = :drv",
      ExpressionAttributeValues: { ":drv": drvPath },
      ProjectionExpression: "jobId",
    },
    JobDerivationItem.pick({ jobId: true }),
  );
  return rows.map((r) => r.jobId);
}

/**
 * Mirrors a derivation's new status into every job that needs it (for paging and counting
 * by status). A mirror older than the row's is dropped, so late writes cannot undo newer ones.
 * Returns the ids of those jobs.
 */
export async function mirrorStatus(drvPath: string, status: DerivationStatus, at: string): Promise<string[]> {
  const jobIds = await jobsNeeding(drvPath);
  await Promise.all(
    jobIds.map(async (jobId) => {
      const old = await JobDerivations.updateReturning(
        { jobId, drvPath },
        {
          UpdateExpression: "SET #status = :status, jobStatus = :key, updatedAt = :at",
          ConditionExpression: "attribute_exists(jobId) AND (attribute_not_exists(updatedAt) OR updatedAt <= :at)",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":status": status, ":key": jobStatusKey(jobId, status), ":at": at },
        },
        "UPDATED_OLD",
        OldStatus,
      );
      // The same write says which status it left: the job's counts move with it (storage/job-counts.ts).
      if (old?.status) await noteCountMove(jobId, old.status, status);
    }),
  );
  return jobIds;
}

/** Whether a job has at least one derivation in a status (one index read, however big the job). */
export async function jobHasStatus(jobId: string, status: DerivationStatus): Promise<boolean> {
  const items = await JobDerivations.firstPage({
    IndexName: "byJobStatus",
    KeyConditionExpression: "jobStatus = :key",
    ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
    Limit: 1,
  });
  return items.length > 0;
}

/** Every derivation row of a job read consistently from the table (not the index). */
export function jobDerivationRows(jobId: string): Promise<JobDerivationItem[]> {
  return JobDerivations.query({
    KeyConditionExpression: "jobId = :job",
    ExpressionAttributeValues: { ":job": jobId },
    ConsistentRead: true,
  });
}
