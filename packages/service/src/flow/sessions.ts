/**
 * Agent sessions read whole, the tasks they hold included (docs/reliability.md, "A reconnect
 * never restarts a build"). The task records are the task kinds' (flow/tasks/registry.ts);
 * writes to sessions are in storage/sessions.ts.
 */
import type { AgentInfo, SessionCredential } from "@nimbus/protocol";
import { z } from "zod";
import { hashMatches, hashSecret } from "../platform/token-secret.ts";
import { SessionFields } from "../storage/items.ts";
import { SHARD } from "../storage/keys.ts";
import { quietSessionsQuery } from "../storage/sessions.ts";
import { defineTable } from "../storage/table.ts";
import { SessionTask } from "./tasks/registry.ts";

export const SessionItem = SessionFields.extend({
  /** Tasks given and not yet ended, by task id. */
  tasks: z.record(z.string(), SessionTask),
});
export type SessionItem = z.infer<typeof SessionItem>;

const Sessions = defineTable("Sessions", SessionItem);

export const getSession = (sessionId: string): Promise<SessionItem | undefined> => Sessions.get({ sessionId });

/** Refreshes a session's `lastSeen` (a heartbeat) and returns it whole, tasks included; undefined if it is gone. */
export const touchSessionReturning = (sessionId: string, now: Date): Promise<SessionItem | undefined> =>
  Sessions.updateReturning(
    { sessionId },
    { UpdateExpression: "SET lastSeen = :now", ConditionExpression: "attribute_exists(sessionId)", ExpressionAttributeValues: { ":now": now.toISOString() } },
    "ALL_NEW",
  );

/** Sessions not heard from since `before` (from the index). */
export const quietSessions = (before: Date): Promise<SessionItem[]> => Sessions.query(quietSessionsQuery(before));

/** The tasks a session holds, each with its record. */
export const heldTasks = (session: SessionItem): [string, SessionTask][] => Object.entries(session.tasks);

export type Attach = { ok: true; session: SessionItem; previousConnectionId?: string } | { ok: false; reason: string };

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
    shard: SHARD.session,
    connectionId: input.connectionId,
    agent: input.agent,
    runningTasks: 0,
    tasks: {},
    createdAt: at,
    lastSeen: at,
  };
  if (await Sessions.put(fresh, { expression: "attribute_not_exists(sessionId)" })) return { ok: true, session: fresh };
  const known = await getSession(credential.id);
  if (!known || !hashMatches(credential.secret, known.secretHash)) {
    return { ok: false, reason: "this session id belongs to another agent's credential" };
  }
  const before = await Sessions.updateReturning(
    { sessionId: credential.id },
    {
      UpdateExpression: "SET connectionId = :conn, #agent = :agent, tokenId = :token, lastSeen = :now REMOVE draining",
      ConditionExpression: "secretHash = :hash",
      ExpressionAttributeNames: { "#agent": "agent" },
      ExpressionAttributeValues: { ":conn": input.connectionId, ":agent": input.agent, ":token": input.tokenId, ":now": at, ":hash": known.secretHash },
    },
    "ALL_OLD",
  );
  if (!before) return { ok: false, reason: "the session ended meanwhile; reconnect" };
  return {
    ok: true,
    session: { ...before, connectionId: input.connectionId, agent: input.agent, lastSeen: at },
    ...(before.connectionId && before.connectionId !== input.connectionId ? { previousConnectionId: before.connectionId } : {}),
  };
}
