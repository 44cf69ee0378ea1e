import { isActiveJob } from "@nimbus/core";
import type { JobStatus } from "@nimbus/protocol";
import { conflict, notFound } from "../platform/errors.ts";
import { sendToAgent } from "../storage/agent-socket.ts";
import { getDerivation, moveDerivation } from "../storage/derivations.ts";
import { jobDerivationRows, jobsNeeding, mirrorStatus } from "../storage/job-derivations.ts";
import { setExactCounts, type StatusCounts } from "../storage/job-counts.ts";
import { getJob, setJobStatus } from "../storage/jobs.ts";
import { getSessionLoad, releaseTask } from "../storage/sessions.ts";

/** Whether another job that is still running needs this derivation. */
async function neededElsewhere(drvPath: string, jobId: string): Promise<boolean> {
  for (const other of await jobsNeeding(drvPath)) {
    if (other === jobId) continue;
    const job = await getJob(other);
    if (job && isActiveJob(job.status)) return true;
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
  if (!isActiveJob(job.status) || !(await setJobStatus(jobId, "cancelled"))) {
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
    const moved = await moveDerivation(row.drvPath, { from: ["waiting", "queued"], to: "cancelled", remove: ["pendingInputs"], note: { reason: `its job ${jobId} was cancelled` } });
    if (moved) await mirrorStatus(moved.drvPath, moved.status, moved.updatedAt);
  }
  await recount(jobId);
  return { id: jobId, status: "cancelled" };
}

/** The job ended before its cancellations: its counts are those of a consistent read after them. */
async function recount(jobId: string): Promise<void> {
  const counts: StatusCounts = {};
  for (const row of await jobDerivationRows(jobId)) counts[row.status] = (counts[row.status] ?? 0) + 1;
  await setExactCounts(jobId, counts);
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
    note: { reason: "its job was cancelled" },
    condition: { expression: "lease.taskId = :task", values: { ":task": lease.taskId } },
  });
  if (!moved) return;
  await mirrorStatus(drvPath, moved.status, moved.updatedAt);
  const session = await getSessionLoad(lease.sessionId);
  if (session?.connectionId) {
    await sendToAgent(session.connectionId, { type: "cancel", taskId: lease.taskId, reason: "its job was cancelled" });
  }
  await releaseTask(lease.sessionId, lease.taskId);
}
