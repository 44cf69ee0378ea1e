import type { ServiceMessage } from "@nimbus/protocol";
import { getDerivation } from "./derivations.ts";
import { buildTask, evaluateTask } from "./dispatch.ts";
import { getJob } from "./jobs.ts";
import type { SessionItem } from "./sessions.ts";

/**
 * What a (re)connecting agent must hear about its tasks: those its session holds but the agent
 * no longer has (lost in transit, or the agent restarted) are sent again; those the agent
 * still runs but the session no longer holds (handed to someone else) are cancelled.
 */
export async function resumeTasks(session: SessionItem, tasksInProgress: readonly string[]): Promise<ServiceMessage[]> {
  const running = new Set(tasksInProgress);
  const messages: ServiceMessage[] = [];
  for (const [taskId, task] of Object.entries(session.tasks ?? {})) {
    if (running.has(taskId)) continue;
    if (task.kind === "build") {
      const drv = await getDerivation(task.drvPath);
      if (drv?.status === "building" && drv.lease?.taskId === taskId) messages.push(buildTask(taskId, drv));
    } else {
      const job = await getJob(task.jobId);
      if (job?.evaluation.taskId === taskId && job.evaluation.sessionId === session.sessionId) messages.push(evaluateTask(job));
    }
  }
  for (const taskId of running) {
    if (!session.tasks?.[taskId]) messages.push({ type: "cancel", taskId, reason: "this agent no longer holds the task (it was handed to another agent or ended)" });
  }
  return messages;
}
