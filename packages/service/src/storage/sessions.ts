/**
 * Writes to the Sessions table, and reads of a session's load (its tasks left out). What a
 * session holds is read whole by flow/sessions.ts, whose schema knows the task kinds.
 */
import { type CacheReport, cacheProblem } from "@nimbus/protocol";
import type { SessionFields } from "./items.ts";
import { SHARD } from "./keys.ts";
import type { Update } from "./table.ts";
import { SessionLoads } from "./tables.ts";

/** What a session records of a task it holds: its kind and when it started, and what that kind adds. */
export interface HeldTaskRecord {
  kind: string;
  startedAt: string;
}

const updateSession = (sessionId: string, update: Update) => SessionLoads.update({ sessionId }, update);

export const getSessionLoad = (sessionId: string): Promise<SessionFields | undefined> => SessionLoads.get({ sessionId });

/** Every session's load: a small table, bounded by the number of agents. */
export const listSessionLoads = (): Promise<SessionFields[]> => SessionLoads.scan();

export async function touchSession(sessionId: string, now: Date): Promise<void> {
  await updateSession(sessionId, {
    UpdateExpression: "SET lastSeen = :now",
    ConditionExpression: "attribute_exists(sessionId)",
    ExpressionAttributeValues: { ":now": now.toISOString() },
  });
}

/** The session's connection is gone; the session (and its tasks) waits for the agent to return. Whether this call detached it. */
export function detachSession(sessionId: string, connectionId: string): Promise<boolean> {
  return updateSession(sessionId, {
    UpdateExpression: "REMOVE connectionId",
    ConditionExpression: "connectionId = :conn",
    ExpressionAttributeValues: { ":conn": connectionId },
  });
}

export async function setDraining(sessionId: string): Promise<void> {
  await updateSession(sessionId, {
    UpdateExpression: "SET draining = :yes",
    ConditionExpression: "attribute_exists(sessionId)",
    ExpressionAttributeValues: { ":yes": true },
  });
}

/**
 * Takes one of the session's slots for a task: false when it is at its `concurrentTasks`,
 * draining, gone, or already holds that task. This is how each agent's `concurrentTasks` is
 * enforced.
 */
export function reserveTask(sessionId: string, taskId: string, task: HeldTaskRecord, limit: number): Promise<boolean> {
  return updateSession(sessionId, {
    UpdateExpression: "SET runningTasks = runningTasks + :one, tasks.#task = :task",
    ConditionExpression:
      "attribute_exists(connectionId) AND attribute_not_exists(draining) AND runningTasks < :limit AND attribute_not_exists(tasks.#task)",
    ExpressionAttributeNames: { "#task": taskId },
    ExpressionAttributeValues: { ":one": 1, ":task": task, ":limit": limit },
  });
}

/**
 * Gives a task's slot back; only the first release of a task counts (false after). With
 * `startedAt`, only the reservation made then is released, not a later one of the same task.
 */
export function releaseTask(sessionId: string, taskId: string, startedAt?: string): Promise<boolean> {
  return updateSession(sessionId, {
    UpdateExpression: "SET runningTasks = runningTasks - :one REMOVE tasks.#task",
    ConditionExpression: startedAt ? "tasks.#task.startedAt = :started" : "attribute_exists(tasks.#task)",
    ExpressionAttributeNames: { "#task": taskId },
    ExpressionAttributeValues: { ":one": 1, ...(startedAt ? { ":started": startedAt } : {}) },
  });
}

/** The byLastSeen index's hash key and the query of sessions not heard from since `before`. */
export const quietSessionsQuery = (before: Date) => ({
  IndexName: "byLastSeen" as const,
  KeyConditionExpression: "#shard = :shard AND lastSeen < :before",
  ExpressionAttributeNames: { "#shard": "shard" },
  ExpressionAttributeValues: { ":shard": SHARD.session, ":before": before.toISOString() },
});

/**
 * Keeps the agent's cache condition: the last problem with each cache it reported (a failed
 * push, a cache it could not ask), cleared by its next successful push there.
 */
export async function noteCacheReports(sessionId: string, reports: readonly CacheReport[], now: Date): Promise<void> {
  if (reports.length === 0) return;
  // A nested key can only be set once the map exists.
  await updateSession(sessionId, {
    UpdateExpression: "SET cacheProblems = if_not_exists(cacheProblems, :empty)",
    ConditionExpression: "attribute_exists(sessionId)",
    ExpressionAttributeValues: { ":empty": {} },
  });
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const removes: string[] = [];
  for (const [i, report] of [...new Map(reports.map((r) => [r.cache, r])).values()].entries()) {
    names[`#c${i}`] = report.cache;
    const problem = cacheProblem(report);
    if (problem === undefined) removes.push(`cacheProblems.#c${i}`);
    else {
      values[`:p${i}`] = { problem, at: now.toISOString() };
      sets.push(`cacheProblems.#c${i} = :p${i}`);
    }
  }
  await updateSession(sessionId, {
    UpdateExpression: [sets.length ? `SET ${sets.join(", ")}` : "", removes.length ? `REMOVE ${removes.join(", ")}` : ""].filter(Boolean).join(" "),
    ConditionExpression: "attribute_exists(sessionId)",
    ExpressionAttributeNames: names,
    ...(sets.length ? { ExpressionAttributeValues: values } : {}),
  });
}

/** The agent's info changed (`agent-info`): used from now on, while the session speaks on `connectionId`. */
export function updateSessionAgent(sessionId: string, connectionId: string, agent: SessionFields["agent"]): Promise<boolean> {
  return updateSession(sessionId, {
    UpdateExpression: "SET #agent = :agent",
    ConditionExpression: "connectionId = :conn",
    ExpressionAttributeNames: { "#agent": "agent" },
    ExpressionAttributeValues: { ":agent": agent, ":conn": connectionId },
  });
}
