import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { BuildLog, BuildResult, ServiceMessage } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { moveDerivation } from "./derivations.ts";
import { settled } from "./graph.ts";
import { logChunk, type BuildLogItem, type DerivationItem } from "./items.ts";
import { tableName } from "./resource.ts";
import { retryBuild } from "./retries.ts";
import { releaseTask, type SessionItem, type SessionTask } from "./sessions.ts";

type BuildTaskRecord = Extract<SessionTask, { kind: "build" }>;

const heldBuild = (session: SessionItem, taskId: string): BuildTaskRecord | undefined => {
  const task = session.tasks?.[taskId];
  return task?.kind === "build" ? task : undefined;
};

export const unknownTask = (taskId: string, why: string): ServiceMessage => ({
  type: "error",
  code: "unknown-task",
  message: `task ${taskId} ${why}; nothing changed`,
  fatal: false,
  taskId,
});

/** Stores a batch of log lines (idempotent: the chunk number is the attempt and the batch number). */
export async function handleBuildLog(session: SessionItem, message: BuildLog): Promise<ServiceMessage | undefined> {
  const task = heldBuild(session, message.taskId);
  if (!task) return unknownTask(message.taskId, "is not a build this agent holds");
  const item: BuildLogItem = { drvPath: task.drvPath, chunk: logChunk(task.attempt, message.seq), lines: message.lines };
  await dynamo().send(new PutCommand({ TableName: tableName("BuildLogs"), Item: item }));
  return undefined;
}

/**
 * Records how a build ended — only from the session holding its lease, only once — moves the
 * graph on, frees the slot and acknowledges, so the agent stops re-sending it.
 */
export async function handleBuildResult(session: SessionItem, message: BuildResult): Promise<ServiceMessage> {
  const task = heldBuild(session, message.taskId);
  if (!task) return unknownTask(message.taskId, "is not a build this agent holds");
  if (task.drvPath !== message.drvPath) return unknownTask(message.taskId, `builds ${task.drvPath}, not ${message.drvPath}`);
  const now = new Date();
  const leaseHeld = { expression: "lease.taskId = :task", values: { ":task": message.taskId } };
  const builtBy = { hostname: session.agent.hostname, sessionId: session.sessionId, connectionId: session.connectionId ?? "", labels: session.agent.labels };
  let moved: DerivationItem | undefined;
  if (message.status === "succeeded") {
    const set = { builtBy, finishedAt: now.toISOString(), ...(message.outputs ? { outputs: message.outputs } : {}) };
    moved = await moveDerivation(message.drvPath, { from: ["building"], to: "succeeded", set, remove: ["lease"], condition: leaseHeld }, now);
  } else if (message.status === "failed") {
    const reason = `builder failed${message.exitCode === undefined ? "" : ` with exit code ${message.exitCode}`}`;
    const failure = { reason, ...(message.exitCode === undefined ? {} : { exitCode: message.exitCode }), logTail: message.logTail ?? [] };
    const set = { builtBy, failure, finishedAt: now.toISOString() };
    moved = await moveDerivation(message.drvPath, { from: ["building"], to: "failed", set, remove: ["lease"], condition: leaseHeld }, now);
  } else {
    await retryBuild(message.drvPath, message.taskId, task.attempt, `agent error: ${message.error ?? "exceptional result"}`, now);
  }
  if (moved) await settled(moved, now);
  await releaseTask(session.sessionId, message.taskId);
  return { type: "result-ack", taskId: message.taskId };
}
