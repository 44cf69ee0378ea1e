import { closeAgentConnection } from "../storage/agent-socket.ts";
import { deleteSession, releaseTask } from "../storage/sessions.ts";
import type { WorkNotes } from "./new-work.ts";
import { heldTasks, type SessionItem } from "./sessions.ts";
import { taskKind } from "./tasks/registry.ts";

/**
 * Ends a session whose agent left (goodbye) or was lost (the sweeper): each task it holds is
 * handed back by its kind — a build to its queue (a retry: the agent, not the build, failed),
 * an evaluation to the evaluation queue, each only if this session still held it — and its
 * slot freed. The work this queues is noted for the caller to wake agents with.
 */
export async function endSession(session: SessionItem, reason: string, work: WorkNotes, seenBefore?: string): Promise<boolean> {
  // Deleted first and conditionally: if the agent came back meanwhile, nothing is taken from it.
  if (!(await deleteSession(session.sessionId, seenBefore))) return false;
  for (const [taskId, record] of heldTasks(session)) {
    await taskKind(record.kind).handBack(taskId, record, session, reason, work);
    await releaseTask(session.sessionId, taskId);
  }
  if (session.connectionId) await closeAgentConnection(session.connectionId);
  return true;
}
