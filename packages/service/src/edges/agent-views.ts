/** `GET /api/agents`: agents that have said hello, as the API shows them, with their sessions' load. */
import type { AgentInfo, AgentView } from "@nimbus/protocol";
import { listConnections } from "../storage/connections.ts";
import type { ConnectionItem, SessionFields } from "../storage/items.ts";
import { SessionLoads } from "../storage/tables.ts";

export async function listAgents(): Promise<AgentView[]> {
  const connections = (await listConnections()).filter(
    (c): c is ConnectionItem & { agent: AgentInfo; sessionId: string } => c.agent !== undefined && c.sessionId !== undefined,
  );
  const sessions = await SessionLoads.batchGet([...new Set(connections.map((c) => c.sessionId))].map((sessionId) => ({ sessionId })));
  const bySession = new Map(sessions.map((s) => [s.sessionId, s]));
  return connections
    .map((c) => ({
      ...c.agent,
      connectionId: c.connectionId,
      tokenId: c.tokenId,
      connectedAt: c.connectedAt,
      lastSeen: c.lastSeen,
      runningTasks: bySession.get(c.sessionId)?.runningTasks ?? 0,
      ...cacheProblemsOf(bySession.get(c.sessionId)),
    }))
    .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.connectedAt.localeCompare(b.connectedAt));
}

/** The agent's cache condition, as the list shows it: one entry per cache with a problem. */
function cacheProblemsOf(session: SessionFields | undefined): Pick<AgentView, "cacheProblems"> {
  const problems = Object.entries(session?.cacheProblems ?? {}).map(([cache, p]) => ({ cache, problem: p.problem, at: p.at }));
  return problems.length > 0 ? { cacheProblems: problems.sort((a, b) => a.cache.localeCompare(b.cache)) } : {};
}
