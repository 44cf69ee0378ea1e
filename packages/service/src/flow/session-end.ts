import { closeAgentConnection } from "../storage/agent-socket.ts";
import type { WorkNotes } from "./new-work.ts";
import { deleteSession, heldTasks, type EndCondition, type SessionItem } from "./sessions.ts";
import { taskKind } from "./tasks/registry.ts";

/**
 * Ends a session whose agent left (goodbye) or was lost (the sweeper): each task it holds is
 * handed back by its kind — a build to its queue (a retry: the agent, not the build, failed),
 * an evaluation to the evaluation queue, each only if this session still held it. The tasks
 * are those the delete returned, not an earlier read (it may be stale, or an index's copy).
 * A handler that dies half-way leaves leases on a session that no longer exists: the
 * sweeper's orphaned-leases step hands those back. The work this queues is noted for the
 * caller to wake agents with. Returns the session ended, or undefined if it was not.
 */
export async function endSession(sessionId: string, reason: string, work: WorkNotes, unless: EndCondition = {}): Promise<SessionItem | undefined> {
  // Deleted first and conditionally: if the agent came back meanwhile, nothing is taken from it.
  const ended = await deleteSession(sessionId, unless);
  if (!ended) return undefined;
  for (const [taskId, record] of heldTasks(ended)) {
    await taskKind(record.kind).handBack(taskId, record, ended, reason, work);
  }
  if (ended.connectionId) await closeAgentConnection(ended.connectionId);
  return ended;
}
