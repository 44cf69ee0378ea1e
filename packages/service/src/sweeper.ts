import { QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { pruneIfGone } from "./agent-channel.ts";
import { dynamo } from "./aws-clients.ts";
import { sendToBuildQueue } from "./build-queues.ts";
import { quietConnections } from "./connections.ts";
import { noteNewWork, wakeIdleAgents } from "./dispatch.ts";
import { queryAll, unlessConditionFails } from "./dynamo-batch.ts";
import type { DerivationItem, JobItem } from "./items.ts";
import { settled } from "./graph.ts";
import { finishJobIfDone } from "./jobs.ts";
import { tableName } from "./resource.ts";
import { quietSessions } from "./sessions.ts";
import { endSession } from "./task-recovery.ts";
import { timing } from "./timing.ts";

export interface SweepReport {
  connectionsRemoved: number;
  sessionsEnded: number;
  derivationsResent: number;
  settlesPropagated: number;
  jobsFinished: number;
}

/**
 * The scheduled safety net. Each step reads a (sparse) index of what might need help — never a
 * whole table — and acts with conditional writes, so two sweeps at once change nothing twice:
 * 1. connections silent for two heartbeats that the gateway no longer has ($disconnect is best-effort);
 * 2. sessions silent past the grace period: their agent is lost, their tasks go back;
 * 3. queued derivations due after a back-off, or not leased for a long while (their message
 *    was lost, or a local restart emptied the queues): sent to their queue again;
 * 4. settled derivations whose dependents and jobs were never told (a Lambda died between);
 * 5. running jobs with nothing left to do that nobody finished.
 */
export async function sweep(now = new Date()): Promise<SweepReport> {
  const t = timing();
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const report: SweepReport = { connectionsRemoved: 0, sessionsEnded: 0, derivationsResent: 0, settlesPropagated: 0, jobsFinished: 0 };

  for (const connection of await quietConnections(ago(2 * t.heartbeatIntervalMs))) {
    if (await pruneIfGone(connection.connectionId)) report.connectionsRemoved++;
  }
  for (const session of await quietSessions(ago(t.sessionGraceMs))) {
    if (await endSession(session, "its agent was lost", session.lastSeen)) report.sessionsEnded++;
  }
  const due = await queryAll<DerivationItem>({
    TableName: tableName("Derivations"),
    IndexName: "byDueAt",
    KeyConditionExpression: "dueShard = :d AND dueAt <= :now",
    ExpressionAttributeValues: { ":d": "d", ":now": now.toISOString() },
  });
  const stale = await queryAll<DerivationItem>({
    TableName: tableName("Derivations"),
    IndexName: "byQueuedAt",
    KeyConditionExpression: "queuedShard = :q AND queuedAt < :before",
    FilterExpression: "attribute_not_exists(dueShard)",
    ExpressionAttributeValues: { ":q": "q", ":before": ago(t.requeueAfterMs).toISOString() },
  });
  for (const drv of [...due, ...stale]) {
    if (await resend(drv, now)) report.derivationsResent++;
  }
  const unpropagated = await queryAll<DerivationItem>({
    TableName: tableName("Derivations"),
    IndexName: "byUnpropagated",
    KeyConditionExpression: "propagateShard = :p AND updatedAt < :before",
    ExpressionAttributeValues: { ":p": "p", ":before": ago(t.heartbeatIntervalMs).toISOString() },
  });
  // Telling dependents and jobs again is harmless: every step of it is conditional.
  for (const drv of unpropagated) {
    await settled(drv, now);
    report.settlesPropagated++;
  }
  const { Items: quietJobs = [] } = await dynamo().send(
    new QueryCommand({
      TableName: tableName("Jobs"),
      IndexName: "byActivity",
      KeyConditionExpression: "activeShard = :a AND updatedAt < :before",
      ExpressionAttributeValues: { ":a": "a", ":before": ago(t.heartbeatIntervalMs).toISOString() },
      Limit: 100,
    }),
  );
  for (const job of quietJobs as JobItem[]) {
    if (await finishJobIfDone(job.jobId)) report.jobsFinished++;
  }
  await wakeIdleAgents();
  return report;
}

/** Sends a queued derivation to its queue again, once per sweep (the write is conditional on what was read). */
async function resend(drv: DerivationItem, now: Date): Promise<boolean> {
  const claimed = await unlessConditionFails(
    dynamo().send(
      new UpdateCommand({
        TableName: tableName("Derivations"),
        Key: { drvPath: drv.drvPath },
        UpdateExpression: "SET queuedAt = :now REMOVE dueShard, dueAt",
        ConditionExpression: "#status = :queued AND queuedAt = :seen AND attempt = :attempt",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":now": now.toISOString(), ":queued": "queued", ":seen": drv.queuedAt, ":attempt": drv.attempt },
      }),
    ),
  );
  if (!claimed) return false;
  // A new deduplication id: the earlier message may still sit in SQS's 5-minute window.
  await sendToBuildQueue({ ...drv, resend: now.getTime() });
  noteNewWork(drv.queueKey);
  return true;
}
