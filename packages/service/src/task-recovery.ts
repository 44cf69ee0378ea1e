import { closeAgentConnection } from "./agent-channel.ts";
import { getConnection, removeConnection } from "./connections.ts";
import { noteNewWork, returnEvaluation, wakeIdleAgents } from "./dispatch.ts";
import { enqueueEvaluation } from "./evaluation-queue.ts";
import { retryBuild } from "./retries.ts";
import { deleteSession, detachSession, releaseTask, type SessionItem, type SessionTask } from "./sessions.ts";

/**
 * Hands one of a session's tasks back: a build returns to its queue (a retry: the agent, not
 * the build, failed), an evaluation to the evaluation queue — each only if this session still
 * held it — and the slot is freed.
 */
export async function handBack(sessionId: string, taskId: string, task: SessionTask, reason: string): Promise<void> {
  if (task.kind === "build") {
    await retryBuild(task.drvPath, taskId, task.attempt, reason);
  } else {
    const retry = await returnEvaluation(task.jobId, sessionId);
    if (retry !== undefined) {
      await enqueueEvaluation(task.jobId, retry);
      noteNewWork();
    }
  }
  await releaseTask(sessionId, taskId);
}

/** Ends a session whose agent left (goodbye) or was lost (the sweeper): all its tasks go back. */
export async function endSession(session: SessionItem, reason: string, seenBefore?: string): Promise<boolean> {
  // Deleted first and conditionally: if the agent came back meanwhile, nothing is taken from it.
  if (!(await deleteSession(session.sessionId, seenBefore))) return false;
  for (const [taskId, task] of Object.entries(session.tasks ?? {})) await handBack(session.sessionId, taskId, task, reason);
  if (session.connectionId) await closeAgentConnection(session.connectionId);
  await wakeIdleAgents();
  return true;
}

/**
 * Removes a connection that is gone ($disconnect, GoneException, the sweeper). Its session
 * keeps its tasks: the agent may reconnect within the grace period and carry on.
 */
export async function forgetConnection(connectionId: string): Promise<void> {
  const connection = await getConnection(connectionId);
  await removeConnection(connectionId);
  if (connection?.sessionId) await detachSession(connection.sessionId, connectionId);
}
