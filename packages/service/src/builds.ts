import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { BuildLog, BuildResult, ServiceMessage } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { getConnection, releaseTask, type ConnectionItem } from "./connections.ts";
import { moveDerivation } from "./derivations.ts";
import { dispatchTo } from "./dispatch.ts";
import { requeue, settled } from "./graph.ts";
import { logChunk, type BuildLogItem, type DerivationItem } from "./items.ts";
import { tableName } from "./resource.ts";

/** Exceptional results (the agent broke, not the build) are retried this many times in all. */
export const MAX_BUILD_ATTEMPTS = 3;

type BuildTaskRecord = Extract<ConnectionItem["tasks"][string], { kind: "build" }>;

async function heldBuild(connectionId: string, taskId: string): Promise<{ connection: ConnectionItem; task: BuildTaskRecord } | undefined> {
  const connection = await getConnection(connectionId);
  const task = connection?.tasks?.[taskId];
  return connection && task?.kind === "build" ? { connection, task } : undefined;
}

const unknownTask = (taskId: string, why: string): ServiceMessage => ({
  type: "error",
  code: "unknown-task",
  message: `task ${taskId} ${why}; nothing changed`,
  fatal: false,
});

/** Stores a batch of log lines (idempotent: the chunk number is the attempt and the batch number). */
export async function handleBuildLog(connectionId: string, message: BuildLog): Promise<ServiceMessage | undefined> {
  const held = await heldBuild(connectionId, message.taskId);
  if (!held) return unknownTask(message.taskId, "is not a build this connection holds");
  const item: BuildLogItem = {
    drvPath: held.task.drvPath,
    chunk: logChunk(held.task.attempt, message.seq),
    lines: message.lines,
  };
  await dynamo().send(new PutCommand({ TableName: tableName("BuildLogs"), Item: item }));
  return undefined;
}

/**
 * Records how a build ended — only from the connection holding its lease, only once — then
 * moves the graph on and gives the freed slot new work.
 */
export async function handleBuildResult(connectionId: string, message: BuildResult): Promise<ServiceMessage | undefined> {
  const held = await heldBuild(connectionId, message.taskId);
  if (!held) return unknownTask(message.taskId, "is not a build this connection holds");
  if (held.task.drvPath !== message.drvPath) return unknownTask(message.taskId, `builds ${held.task.drvPath}, not ${message.drvPath}`);
  const now = new Date();
  const leaseHeld = { expression: "lease.taskId = :task", values: { ":task": message.taskId } };
  const agent = held.connection.agent!;
  const builtBy = { hostname: agent.hostname, connectionId, labels: agent.labels };
  let moved: DerivationItem | undefined;
  if (message.status === "succeeded") {
    moved = await moveDerivation(
      message.drvPath,
      {
        from: ["building"],
        to: "succeeded",
        set: { builtBy, finishedAt: now.toISOString(), ...(message.outputs ? { outputs: message.outputs } : {}) },
        remove: ["lease"],
        condition: leaseHeld,
      },
      now,
    );
  } else if (message.status === "failed" || held.task.attempt + 1 >= MAX_BUILD_ATTEMPTS) {
    const reason =
      message.status === "failed"
        ? `builder failed${message.exitCode === undefined ? "" : ` with exit code ${message.exitCode}`}`
        : `could not be built after ${MAX_BUILD_ATTEMPTS} attempts: ${message.error ?? "agent error"}`;
    const failure = { reason, ...(message.exitCode === undefined ? {} : { exitCode: message.exitCode }), logTail: message.logTail ?? [] };
    moved = await moveDerivation(
      message.drvPath,
      { from: ["building"], to: "failed", set: { builtBy, failure, finishedAt: now.toISOString() }, remove: ["lease"], condition: leaseHeld },
      now,
    );
  } else {
    const retried = await moveDerivation(
      message.drvPath,
      { from: ["building"], to: "queued", set: { queuedAt: now.toISOString() }, remove: ["lease"], addAttempt: 1, condition: leaseHeld },
      now,
    );
    if (retried) await requeue(retried);
  }
  if (moved) await settled(moved, now);
  if (await releaseTask(connectionId, message.taskId)) await dispatchTo(connectionId);
  return undefined;
}
