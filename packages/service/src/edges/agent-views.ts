/**
 * `GET /api/agents`: agents that have said hello, as the API shows them, with their sessions'
 * load, cache problems and the tasks they run (read from the same Sessions items: no request more).
 */
import type { AgentInfo, AgentView, RunningTask } from "@nimbus/protocol";
import { getSessions, heldTasks, type SessionItem } from "../flow/sessions.ts";
import { listConnections } from "../storage/connections.ts";
import type { ConnectionItem, SessionFields } from "../storage/items.ts";

export async function listAgents(): Promise<AgentView[]> {
  const connections = (await listConnections()).filter(
    (c): c is ConnectionItem & { agent: AgentInfo; sessionId: string } => c.agent !== undefined && c.sessionId !== undefined,
  );
  const sessions = new Map((await getSessions([...new Set(connections.map((c) => c.sessionId))])).map((s) => [s.sessionId, s]));
  return connections
    .map((c) => {
      const session = sessions.get(c.sessionId);
      return {
        ...c.agent,
        connectionId: c.connectionId,
        tokenId: c.tokenId,
        connectedAt: c.connectedAt,
        lastSeen: c.lastSeen,
        runningTasks: session?.runningTasks ?? 0,
        sessionId: c.sessionId,
        ...(session?.draining ? { draining: true } : {}),
        tasks: session ? runningTasks(session) : [],
        ...cacheProblemsOf(session),
      };
    })
    .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.connectedAt.localeCompare(b.connectedAt));
}

/** The session's task records as the API shows them (attempts counted from 1), oldest first. */
function runningTasks(session: SessionItem): RunningTask[] {
  return heldTasks(session)
    .map(([taskId, record]): RunningTask => {
      if (record.kind === "build") {
        const pushing = record.pushing ? { pushing: true as const } : {};
        return { taskId, kind: "build", drvPath: record.drvPath, attempt: record.attempt + 1, startedAt: record.startedAt, ...pushing };
      }
      return { taskId, kind: "evaluate", jobId: record.jobId, startedAt: record.startedAt };
    })
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** The agent's cache condition, as the list shows it: one entry per cache with a problem. */
function cacheProblemsOf(session: SessionFields | undefined): Pick<AgentView, "cacheProblems"> {
  const problems = Object.entries(session?.cacheProblems ?? {}).map(([cache, p]) => ({ cache, problem: p.problem, at: p.at }));
  return problems.length > 0 ? { cacheProblems: problems.sort((a, b) => a.cache.localeCompare(b.cache)) } : {};
}
