import type { JobStatus } from "@nimbus/protocol";
import { sendToAgent } from "./agent-channel.ts";
import { getDerivation, moveDerivation } from "./derivations.ts";
import { getSession, releaseTask } from "./sessions.ts";
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
 * Cancels a running job: its waiting, queued and building derivations are cancelled unless
 * another running job needs them; agents building them are told to stop.
 */
export async function cancelJob(jobId: string): Promise<{ id: string; status: JobStatus }> {
  const job = await getJob(jobId);
  if (!job) throw notFound(`no job ${jobId} — list jobs with \`nimbus jobs\``);
  if (!isActive(job) || !(await setJobStatus(jobId, "cancelled"))) {
    const now = await getJob(jobId);
    throw conflict(`job ${jobId} already ended (${now?.status ?? job.status}); nothing to cancel`);
  }
  for (const row of await jobDerivationRows(jobId)) {
    if (row.status !== "waiting" && row.status !== "queued" && row.status !== "building") continue;
    if (await neededElsewhere(row.drvPath, jobId)) continue;
    if (row.status === "building") {
      await stopBuild(row.drvPath);
      continue;
    }
    const moved = await moveDerivation(row.drvPath, { from: ["waiting", "queued"], to: "cancelled", remove: ["pendingInputs"] });
    if (moved) await mirrorStatus(moved.drvPath, moved.status, moved.updatedAt);
  }
  return { id: jobId, status: "cancelled" };
}

/** Cancels a running build: the lease goes, the agent is told to stop, its slot is freed. */
async function stopBuild(drvPath: string): Promise<void> {
  const drv = await getDerivation(drvPath);
  const lease = drv?.status === "building" ? drv.lease : undefined;
  if (!lease) return;
  const moved = await moveDerivation(drvPath, {
    from: ["building"],
    to: "cancelled",
    remove: ["lease"],
    condition: { expression: "lease.taskId = :task", values: { ":task": lease.taskId } },
  });
  if (!moved) return;
  await mirrorStatus(drvPath, moved.status, moved.updatedAt);
  const session = await getSession(lease.sessionId);
  if (session?.connectionId) {
    await sendToAgent(session.connectionId, { type: "cancel", taskId: lease.taskId, reason: "its job was cancelled" });
  }
  await releaseTask(lease.sessionId, lease.taskId);
}
