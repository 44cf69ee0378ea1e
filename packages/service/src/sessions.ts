import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type UpdateCommandInput } from "@aws-sdk/lib-dynamodb";
import type { AgentInfo, SessionCredential } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { isConditionFailure, quietSince, scanAll, unlessConditionFails } from "./dynamo-batch.ts";
import { tableName } from "./resource.ts";
import { hashMatches, hashSecret } from "./token-secret.ts";

/**
 * An agent's session: it outlives connections (reconnects, the 2-hour cap), and holds the
 * agent's tasks — the leases — and its slots. Only its secret's hash is stored.
 */
export interface SessionItem {
  sessionId: string;
  secretHash: string;
  tokenId: string;
  /** Constant "s": the byLastSeen index's hash key. */
  shard: "s";
  /** The connection it speaks on now; absent while the agent is away. */
  connectionId?: string;
  agent: AgentInfo;
  /** Tasks given and not yet ended: never above agent.concurrentTasks (invariant 3). */
  runningTasks: number;
  tasks: Record<string, SessionTask>;
  /** The agent asked for no new work (it is shutting down). */
  draining?: boolean;
  createdAt: string;
  lastSeen: string;
}

export type SessionTask =
  | { kind: "evaluate"; jobId: string; startedAt: string }
  | { kind: "build"; drvPath: string; attempt: number; startedAt: string };

const key = (sessionId: string) => ({ TableName: tableName("Sessions"), Key: { sessionId } });

export async function getSession(sessionId: string): Promise<SessionItem | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ ...key(sessionId), ConsistentRead: true }));
  return Item as SessionItem | undefined;
}

export type Attach =
  | { ok: true; session: SessionItem; previousConnectionId?: string }
  | { ok: false; reason: string };

/**
 * Puts a session on a connection: a new one is created, a known one is resumed if the
 * secret matches. Returns the session as it was, and the connection it had before.
 */
export async function attachSession(input: {
  credential: SessionCredential;
  tokenId: string;
  connectionId: string;
  agent: AgentInfo;
  now: Date;
}): Promise<Attach> {
  const { credential, now } = input;
  const at = now.toISOString();
  const fresh: SessionItem = {
    sessionId: credential.id,
    secretHash: hashSecret(credential.secret),
    tokenId: input.tokenId,
    shard: "s",
    connectionId: input.connectionId,
    agent: input.agent,
    runningTasks: 0,
    tasks: {},
    createdAt: at,
    lastSeen: at,
  };
  try {
    await dynamo().send(
      new PutCommand({ TableName: tableName("Sessions"), Item: fresh, ConditionExpression: "attribute_not_exists(sessionId)" }),
    );
    return { ok: true, session: fresh };
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
  const known = await getSession(credential.id);
  if (!known || !hashMatches(credential.secret, known.secretHash)) {
    return { ok: false, reason: "this session id belongs to another agent's credential" };
  }
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        ...key(credential.id),
        UpdateExpression: "SET connectionId = :conn, #agent = :agent, tokenId = :token, lastSeen = :now REMOVE draining",
        ConditionExpression: "secretHash = :hash",
        ExpressionAttributeNames: { "#agent": "agent" },
        ExpressionAttributeValues: {
          ":conn": input.connectionId,
          ":agent": input.agent,
          ":token": input.tokenId,
          ":now": at,
          ":hash": known.secretHash,
        },
        ReturnValues: "ALL_OLD",
      }),
    );
    const before = Attributes as SessionItem;
    return {
      ok: true,
      session: { ...before, connectionId: input.connectionId, agent: input.agent, lastSeen: at },
      ...(before.connectionId && before.connectionId !== input.connectionId ? { previousConnectionId: before.connectionId } : {}),
    };
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    return { ok: false, reason: "the session ended meanwhile; reconnect" };
  }
}

/** An update of a session that changes nothing if its condition fails; whether it applied. */
async function updateSession(sessionId: string, update: Omit<UpdateCommandInput, "TableName" | "Key">): Promise<boolean> {
  return (await unlessConditionFails(dynamo().send(new UpdateCommand({ ...key(sessionId), ...update })))) !== undefined;
}

export async function touchSession(sessionId: string, now: Date): Promise<void> {
  await updateSession(sessionId, {
    UpdateExpression: "SET lastSeen = :now",
    ConditionExpression: "attribute_exists(sessionId)",
    ExpressionAttributeValues: { ":now": now.toISOString() },
  });
}

/** The session's connection is gone; the session (and its tasks) waits for the agent to return. */
export async function detachSession(sessionId: string, connectionId: string): Promise<void> {
  await updateSession(sessionId, {
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
 * draining, gone, or already holds that task. This is how invariant 3 is enforced.
 */
export function reserveTask(sessionId: string, taskId: string, task: SessionTask, limit: number): Promise<boolean> {
  return updateSession(sessionId, {
    UpdateExpression: "SET runningTasks = runningTasks + :one, tasks.#task = :task",
    ConditionExpression:
      "attribute_exists(connectionId) AND attribute_not_exists(draining) AND runningTasks < :limit AND attribute_not_exists(tasks.#task)",
    ExpressionAttributeNames: { "#task": taskId },
    ExpressionAttributeValues: { ":one": 1, ":task": task, ":limit": limit },
  });
}

/** Gives a task's slot back; only the first release of a task counts (false after). */
export function releaseTask(sessionId: string, taskId: string): Promise<boolean> {
  return updateSession(sessionId, {
    UpdateExpression: "SET runningTasks = runningTasks - :one REMOVE tasks.#task",
    ConditionExpression: "attribute_exists(tasks.#task)",
    ExpressionAttributeNames: { "#task": taskId },
    ExpressionAttributeValues: { ":one": 1 },
  });
}

/** Ends a session, unless it was seen after `seenBefore` (it came back: leave it be). */
export async function deleteSession(sessionId: string, seenBefore?: string): Promise<boolean> {
  const condition = seenBefore ? { ConditionExpression: "lastSeen <= :seen", ExpressionAttributeValues: { ":seen": seenBefore } } : {};
  return (await unlessConditionFails(dynamo().send(new DeleteCommand({ ...key(sessionId), ...condition })))) !== undefined;
}

export const listSessions = () => scanAll<SessionItem>(tableName("Sessions"));

/** Sessions not heard from since `before` (from the index). */
export const quietSessions = (before: Date) => quietSince<SessionItem>(tableName("Sessions"), "s", before);
