import type { AgentInfo } from "@nimbus/protocol";
import type { ConnectionItem } from "./items.ts";
import { indexShard, indexShards, SHARD } from "./keys.ts";
import { timing } from "../platform/timing.ts";
import { scheduleDisconnectCheck } from "./disconnect-checks.ts";
import { detachSession } from "./sessions.ts";
import { walkQuery, walkShards, type Position, type Walked } from "./index-walk.ts";
import { Connections } from "./tables.ts";

export async function openConnection(input: { connectionId: string; tokenId: string; sourceIp?: string; now: Date }): Promise<void> {
  const at = input.now.toISOString();
  const item: ConnectionItem = {
    connectionId: input.connectionId,
    tokenId: input.tokenId,
    shard: indexShard(SHARD.connection, input.connectionId),
    connectedAt: at,
    lastSeen: at,
    ...(input.sourceIp ? { sourceIp: input.sourceIp } : {}),
  };
  if (!(await Connections.put(item, { expression: "attribute_not_exists(connectionId)" }))) {
    throw new Error(`connection ${input.connectionId} is already registered`);
  }
}

export const getConnection = (connectionId: string): Promise<ConnectionItem | undefined> => Connections.get({ connectionId });

export type HelloOutcome = "registered" | "duplicate" | "unknown-connection";

/** Registers the agent and its session on its connection, once: a second hello changes nothing. */
export async function recordHello(connectionId: string, agent: AgentInfo, sessionId: string, now: Date): Promise<HelloOutcome> {
  const registered = await Connections.update(
    { connectionId },
    {
      // `agent` is a DynamoDB reserved word, hence the name placeholder.
      UpdateExpression: "SET #agent = :agent, sessionId = :session, helloAt = :now, lastSeen = :now",
      ConditionExpression: "attribute_exists(connectionId) AND attribute_not_exists(helloAt)",
      ExpressionAttributeNames: { "#agent": "agent" },
      ExpressionAttributeValues: { ":agent": agent, ":session": sessionId, ":now": now.toISOString() },
    },
  );
  if (registered) return "registered";
  return (await getConnection(connectionId)) ? "duplicate" : "unknown-connection";
}

export type TouchOutcome = { ok: true; sessionId: string } | { ok: false; reason: "hello-required" | "unknown-connection" };

/** Refreshes `lastSeen` on a heartbeat from a registered agent. */
export async function touchConnection(connectionId: string, now: Date): Promise<TouchOutcome> {
  const touched = await Connections.updateReturning(
    { connectionId },
    {
      UpdateExpression: "SET lastSeen = :now",
      ConditionExpression: "attribute_exists(helloAt)",
      ExpressionAttributeValues: { ":now": now.toISOString() },
    },
    "ALL_NEW",
  );
  if (touched?.sessionId) return { ok: true, sessionId: touched.sessionId };
  return { ok: false, reason: (await getConnection(connectionId)) ? "hello-required" : "unknown-connection" };
}

export async function removeConnection(connectionId: string): Promise<void> {
  await Connections.delete({ connectionId });
}

export const listConnections = (): Promise<ConnectionItem[]> => Connections.scan();

/** Connections not heard from since `before`, quietest first, from `startKey` on (from the index: the sweeper never scans). */
export const quietConnections = (before: Date, startKey?: Position): AsyncGenerator<Walked<ConnectionItem>> =>
  walkShards(
    indexShards(SHARD.connection),
    (shard, start) =>
      walkQuery(
        Connections,
        {
          IndexName: "byLastSeen",
          KeyConditionExpression: "#shard = :shard AND lastSeen < :before",
          ExpressionAttributeNames: { "#shard": "shard" },
          ExpressionAttributeValues: { ":shard": shard, ":before": before.toISOString() },
        },
        start,
      ),
    (connection) => connection.lastSeen,
    startKey,
  );

/**
 * Removes a connection that is gone ($disconnect, GoneException, the sweeper). Its session
 * keeps its tasks: the agent may reconnect within the disconnect grace and carry on; a check
 * of the session is scheduled for when the grace is over (docs/reliability.md, "Fast re-queue").
 */
export async function forgetConnection(connectionId: string, now = new Date()): Promise<void> {
  const connection = await getConnection(connectionId);
  await removeConnection(connectionId);
  const sessionId = connection?.sessionId;
  if (!sessionId || !(await detachSession(sessionId, connectionId))) return;
  await scheduleDisconnectCheck({ sessionId, connectionId, detachedAt: now.toISOString() }, timing().disconnectGraceMs);
}

/** The agent's info changed (`agent-info`): what `GET /api/agents` shows from now on. */
export async function updateConnectionAgent(connectionId: string, agent: AgentInfo): Promise<void> {
  await Connections.update(
    { connectionId },
    {
      UpdateExpression: "SET #agent = :agent",
      ConditionExpression: "attribute_exists(helloAt)",
      ExpressionAttributeNames: { "#agent": "agent" },
      ExpressionAttributeValues: { ":agent": agent },
    },
  );
}
