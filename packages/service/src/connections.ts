import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { AgentInfo, AgentView } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { batchGet, isConditionFailure, quietSince, scanAll } from "./dynamo-batch.ts";
import { tableName } from "./resource.ts";
import type { SessionItem } from "./sessions.ts";

/** One open WebSocket. `agent` and `sessionId` are set by the agent's hello; until then it is not listed. */
export interface ConnectionItem {
  connectionId: string;
  tokenId: string;
  /** Constant "c": the byLastSeen index's hash key. */
  shard: "c";
  connectedAt: string;
  lastSeen: string;
  sourceIp?: string;
  helloAt?: string;
  agent?: AgentInfo;
  sessionId?: string;
}

export async function openConnection(input: { connectionId: string; tokenId: string; sourceIp?: string; now: Date }) {
  const at = input.now.toISOString();
  const item: ConnectionItem = {
    connectionId: input.connectionId,
    tokenId: input.tokenId,
    shard: "c",
    connectedAt: at,
    lastSeen: at,
    sourceIp: input.sourceIp,
  };
  await dynamo().send(
    new PutCommand({
      TableName: tableName("Connections"),
      Item: item,
      ConditionExpression: "attribute_not_exists(connectionId)",
    }),
  );
}

export async function getConnection(connectionId: string): Promise<ConnectionItem | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: tableName("Connections"), Key: { connectionId }, ConsistentRead: true }),
  );
  return Item as ConnectionItem | undefined;
}

export type HelloOutcome = "registered" | "duplicate" | "unknown-connection";

/** Registers the agent and its session on its connection, once: a second hello changes nothing. */
export async function recordHello(connectionId: string, agent: AgentInfo, sessionId: string, now: Date): Promise<HelloOutcome> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Connections"),
        Key: { connectionId },
        // `agent` is a DynamoDB reserved word, hence the name placeholder.
        UpdateExpression: "SET #agent = :agent, sessionId = :session, helloAt = :now, lastSeen = :now",
        ConditionExpression: "attribute_exists(connectionId) AND attribute_not_exists(helloAt)",
        ExpressionAttributeNames: { "#agent": "agent" },
        ExpressionAttributeValues: { ":agent": agent, ":session": sessionId, ":now": now.toISOString() },
      }),
    );
    return "registered";
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    return (await getConnection(connectionId)) ? "duplicate" : "unknown-connection";
  }
}

export type TouchOutcome = { ok: true; sessionId: string } | { ok: false; reason: "hello-required" | "unknown-connection" };

/** Refreshes `lastSeen` on a heartbeat from a registered agent. */
export async function touchConnection(connectionId: string, now: Date): Promise<TouchOutcome> {
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Connections"),
        Key: { connectionId },
        UpdateExpression: "SET lastSeen = :now",
        ConditionExpression: "attribute_exists(helloAt)",
        ExpressionAttributeValues: { ":now": now.toISOString() },
        ReturnValues: "ALL_NEW",
      }),
    );
    return { ok: true, sessionId: (Attributes as ConnectionItem).sessionId! };
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    return { ok: false, reason: (await getConnection(connectionId)) ? "hello-required" : "unknown-connection" };
  }
}

export async function removeConnection(connectionId: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName("Connections"), Key: { connectionId } }));
}

export const listConnections = () => scanAll<ConnectionItem>(tableName("Connections"));

/** Connections not heard from since `before` (from the index: the sweeper never scans). */
export const quietConnections = (before: Date) => quietSince<ConnectionItem>(tableName("Connections"), "c", before);

/** Agents that have said hello, as the API shows them, with their sessions' load. */
export async function listAgents(): Promise<AgentView[]> {
  const connections = (await listConnections()).filter(
    (c): c is ConnectionItem & { agent: AgentInfo; sessionId: string } => c.agent !== undefined && c.sessionId !== undefined,
  );
  const sessions = await batchGet<SessionItem>(
    tableName("Sessions"),
    [...new Set(connections.map((c) => c.sessionId))].map((sessionId) => ({ sessionId })),
  );
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
