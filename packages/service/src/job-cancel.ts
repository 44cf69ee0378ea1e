import type { JobStatus } from "@nimbus/protocol";
import { moveDerivation } from "./derivations.ts";
import { conflict, notFound } from "./errors.ts";
import { jobDerivationRows, mirrorStatus } from "./job-derivations.ts";
import { getJob, isActive, setJobStatus } from "./jobs.ts";
import { queryAll } from "./dynamo-batch.ts";
import type { JobDerivationItem } from "./items.ts";
import { tableName } from "./resource.ts";

/** Whether another job that is still running needs this derivation. */
async function neededElsewhere(drvPath: string, jobId: string): Promise<boolean> {
  const rows = await queryAll<JobDerivationItem>({
    TableName: tableName("JobDerivations"),
    IndexName: "byDrv",
    KeyConditionExpression: "drvPath = :drv",
    ExpressionAttributeValues: { ":drv": drvPath },
  });
  for (const row of rows) {
    if (row.jobId === jobId) continue;
    const other = await getJob(row.jobId);
    if (other && isActive(other)) return true;
  }
  return false;
}

/**
 * Cancels a running job: it stops counting, and its waiting and queued derivations are
 * cancelled unless another running job needs them. Builds already running finish.
 */
export async function cancelJob(jobId: string): Promise<{ id: string; status: JobStatus }> {
  const job = await getJob(jobId);
  if (!job) throw notFound(`no job ${jobId} — list jobs with \`nimbus jobs\``);
  if (!isActive(job) || !(await setJobStatus(jobId, "cancelled"))) {
    const now = await getJob(jobId);
    throw conflict(`job ${jobId} already ended (${now?.status ?? job.status}); nothing to cancel`);
  }
  for (const row of await jobDerivationRows(jobId)) {
    if (row.status !== "waiting" && row.status !== "queued") continue;
    if (await neededElsewhere(row.drvPath, jobId)) continue;
    const moved = await moveDerivation(row.drvPath, { from: ["waiting", "queued"], to: "cancelled", remove: ["pendingInputs"] });
    if (moved) await mirrorStatus(moved.drvPath, moved.status, moved.updatedAt);
  }
  return { id: jobId, status: "cancelled" };
}
