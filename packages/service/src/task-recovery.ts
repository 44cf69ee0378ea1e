import { enqueueEvaluation } from "./evaluation-queue.ts";
import { getConnection, removeConnection, type ConnectionItem } from "./connections.ts";
import { moveDerivation } from "./derivations.ts";
import { noteNewWork, returnEvaluation, wakeIdleAgents } from "./dispatch.ts";
import { requeue } from "./graph.ts";

/**
 * Hands a lost connection's tasks back: its builds return to their queues and its
 * evaluations to the evaluation queue, each only if this connection still held it.
 */
export async function abandonTasks(connection: ConnectionItem): Promise<void> {
  for (const [taskId, task] of Object.entries(connection.tasks ?? {})) {
    if (task.kind === "build") {
      const moved = await moveDerivation(task.drvPath, {
        from: ["building"],
        to: "queued",
        set: { queuedAt: new Date().toISOString() },
        remove: ["lease"],
        addAttempt: 1,
        condition: { expression: "lease.taskId = :task", values: { ":task": taskId } },
      });
      if (moved) await requeue(moved);
    } else {
      const retry = await returnEvaluation(task.jobId, connection.connectionId);
      if (retry !== undefined) {
        await enqueueEvaluation(task.jobId, retry);
        noteNewWork();
      }
    }
  }
  await wakeIdleAgents();
}

/** Removes a connection that is gone ($disconnect, GoneException, sweeper) and recovers its tasks. */
export async function forgetConnection(connectionId: string): Promise<void> {
  const connection = await getConnection(connectionId);
  await removeConnection(connectionId);
  if (connection) await abandonTasks(connection);
}
