/**
 * Sending a task an agent's session holds (a dispatch's, or a hand-over's): to the connection
 * the session was read with, and if that one is gone, to the one it speaks on now.
 */
import type { ServiceMessage } from "@nimbus/protocol";
import { sendToAgent } from "../storage/agent-socket.ts";
import { getSessionLoad } from "../storage/sessions.ts";

/**
 * Sends `task` on `connectionId`. A task sent to a connection that is gone may have missed the
 * agent by a moment: if its hello on a new connection came after the session was read, that
 * hello could not list this task (it was not yet reserved), so no reconnect would bring it
 * again. The session read afresh names the new connection. Otherwise the task waits for the
 * agent's next hello, which re-sends it. Whether it was delivered.
 */
export async function sendTask(sessionId: string, connectionId: string, task: ServiceMessage): Promise<boolean> {
  if (await sendToAgent(connectionId, task)) return true;
  const now = (await getSessionLoad(sessionId))?.connectionId;
  return now !== undefined && now !== connectionId && (await sendToAgent(now, task));
}
