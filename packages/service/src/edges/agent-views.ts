/** `GET /api/agents`: agents that have said hello, as the API shows them, with their sessions' load. */
import type { AgentInfo, AgentView } from "@nimbus/protocol";
import { listConnections } from "../storage/connections.ts";
import type { ConnectionItem } from "../storage/items.ts";
import { SessionLoads } from "../storage/tables.ts";

export async function listAgents(): Promise<AgentView[]> {
  const connections = (await listConnections()).filter(
    (c): c is ConnectionItem & { agent: AgentInfo; sessionId: string } => c.agent !== undefined && c.sessionId !== undefined,
  );
  const sessions = await SessionLoads.batchGet([...new Set(connections.map((c) => c.sessionId))].map((sessionId) => ({ sessionId })));
  const load = new Map(sessions.map((s) => [s.sessionId, s.runningTasks]));
  return connections
    .map((c) => ({
      ...c.agent,
      connectionId: c.connectionId,
      tokenId: c.tokenId,
      connectedAt: c.connectedAt,
      lastSeen: c.lastSeen,
      runningTasks: load.get(c.sessionId) ?? 0,
    }))
    .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.connectedAt.localeCompare(b.connectedAt));
}
