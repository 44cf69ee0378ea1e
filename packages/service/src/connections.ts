import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { AgentInfo, AgentView } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { isConditionFailure } from "./dynamo-batch.ts";
import { tableName } from "./resource.ts";

/** One open WebSocket. `agent` is set by the agent's hello; until then it is not listed. */
export interface ConnectionItem {
  connectionId: string;
  tokenId: string;
  connectedAt: string;
  lastSeen: string;
  sourceIp?: string;
  helloAt?: string;
  agent?: AgentInfo;
  /** How many tasks the service gave this connection that have not ended: never above concurrentTasks. */
  runningTasks: number;
  /** Those tasks by id: what each one is about. */
  tasks: Record<string, ConnectionTask>;
}

export type ConnectionTask =
  | { kind: "evaluate"; jobId: string; startedAt: string }
  | { kind: "build"; drvPath: string; attempt: number; startedAt: string };


export async function openConnection(input: { connectionId: string; tokenId: string; sourceIp?: string; now: Date }) {
  const at = input.now.toISOString();
  const item: ConnectionItem = {
    connectionId: input.connectionId,
    tokenId: input.tokenId,
    connectedAt: at,
    lastSeen: at,
    sourceIp: input.sourceIp,
    runningTasks: 0,
    tasks: {},
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

/** Registers the agent on its connection, once: a second hello changes nothing. */
export async function recordHello(connectionId: string, agent: AgentInfo, now: Date): Promise<HelloOutcome> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Connections"),
        Key: { connectionId },
        // `agent` is a DynamoDB reserved word, hence the name placeholder.
        UpdateExpression: "SET #agent = :agent, helloAt = :now, lastSeen = :now",
        ConditionExpression: "attribute_exists(connectionId) AND attribute_not_exists(helloAt)",
        ExpressionAttributeNames: { "#agent": "agent" },
        ExpressionAttributeValues: { ":agent": agent, ":now": now.toISOString() },
      }),
    );
    return "registered";
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    return (await getConnection(connectionId)) ? "duplicate" : "unknown-connection";
  }
}

export type TouchOutcome = "ok" | "hello-required" | "unknown-connection";

/** Refreshes `lastSeen` on a heartbeat from a registered agent. */
export async function touchConnection(connectionId: string, now: Date): Promise<TouchOutcome> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Connections"),
        Key: { connectionId },
        UpdateExpression: "SET lastSeen = :now",
        ConditionExpression: "attribute_exists(helloAt)",
        ExpressionAttributeValues: { ":now": now.toISOString() },
      }),
    );
    return "ok";
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    return (await getConnection(connectionId)) ? "hello-required" : "unknown-connection";
  }
}

export async function removeConnection(connectionId: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName("Connections"), Key: { connectionId } }));
}

export async function listConnections(): Promise<ConnectionItem[]> {
  const items: ConnectionItem[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new ScanCommand({ TableName: tableName("Connections"), ExclusiveStartKey, ConsistentRead: true }),
    );
    items.push(...((page.Items ?? []) as ConnectionItem[]));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/** Agents that have said hello, as the API shows them. */
export async function listAgents(): Promise<AgentView[]> {
  const connections = await listConnections();
  return connections
    .filter((c): c is ConnectionItem & { agent: AgentInfo } => c.agent !== undefined)
    .map((c) => ({
      ...c.agent,
      connectionId: c.connectionId,
      tokenId: c.tokenId,
      connectedAt: c.connectedAt,
      lastSeen: c.lastSeen,
      runningTasks: c.runningTasks,
    }))
    .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.connectedAt.localeCompare(b.connectedAt));
}

/**
 * Takes one of the agent's slots for a task: fails (false) when the agent is at its
 * `concurrentTasks`, gone, or already holds that task. This is how invariant 3 is enforced.
 */
export async function reserveTask(connectionId: string, taskId: string, task: ConnectionTask, limit: number): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Connections"),
        Key: { connectionId },
        UpdateExpression: "SET runningTasks = runningTasks + :one, tasks.#task = :task",
        ConditionExpression: "attribute_exists(helloAt) AND runningTasks < :limit AND attribute_not_exists(tasks.#task)",
        ExpressionAttributeNames: { "#task": taskId },
        ExpressionAttributeValues: { ":one": 1, ":task": task, ":limit": limit },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/** Gives a task's slot back; only the first release of a task counts (false after). */
export async function releaseTask(connectionId: string, taskId: string): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Connections"),
        Key: { connectionId },
        UpdateExpression: "SET runningTasks = runningTasks - :one REMOVE tasks.#task",
        ConditionExpression: "attribute_exists(tasks.#task)",
        ExpressionAttributeNames: { "#task": taskId },
        ExpressionAttributeValues: { ":one": 1 },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
