/**
 * Agent sessions read whole, the tasks they hold included (docs/reliability.md, "A reconnect
 * never restarts a build"). The task records are the task kinds' (flow/tasks/registry.ts);
 * writes to sessions are in storage/sessions.ts.
 */
import { capabilityClassOf, shardOf } from "@nimbus/core";
import type { AgentInfo, SessionCredential } from "@nimbus/protocol";
import { z } from "zod";
import { hashMatches, hashSecret } from "../platform/token-secret.ts";
import { SessionFields } from "../storage/items.ts";
import { sessionShard } from "../storage/keys.ts";
import { registerAgentClass } from "../storage/agent-classes.ts";
import { forgetFullClass } from "../storage/full-class-beliefs.ts";
import { forgetSessionCopy, keepSessionCopy, sessionCopy } from "../storage/session-copies.ts";
import { capabilityKeyOf, indexIfUnindexed, quietSessionsQueries, SessionId } from "../storage/sessions.ts";
import { defineTable } from "../storage/table.ts";
import { SessionTask } from "./tasks/registry.ts";

export const SessionItem = SessionFields.extend({
  /** Tasks given and not yet ended, by task id. */
  tasks: z.record(z.string(), SessionTask),
});
export type SessionItem = z.infer<typeof SessionItem>;

const Sessions = defineTable("Sessions", SessionItem);

/** The session read afresh, kept as this handler's copy of it (storage/session-copies.ts) as of `at`: when the read is sent, or the frame's time. */
export async function getSession(sessionId: string, at = new Date()): Promise<SessionItem | undefined> {
  return keepSessionCopy(await Sessions.get({ sessionId }), at.getTime());
}

/**
 * This handler's copy of the session, if a read or a write took it at most `maxAgeMs` before
 * `now`: what it was then, tasks included — another container may have changed it since.
 */
export function recentSession(sessionId: string, now: Date, maxAgeMs: number): SessionItem | undefined {
  const copy = sessionCopy(sessionId, now, maxAgeMs);
  const parsed = copy && SessionItem.safeParse(copy);
  return parsed?.success ? parsed.data : undefined;
}

/** Sessions by id, tasks included (missing ones left out). */
export const getSessions = (sessionIds: readonly string[]): Promise<SessionItem[]> => Sessions.batchGet(sessionIds.map((sessionId) => ({ sessionId })));
/** Refreshes a session's `lastSeen` (a heartbeat) and returns it whole, tasks included; undefined if it is gone. */
export async function touchSessionReturning(sessionId: string, now: Date): Promise<SessionItem | undefined> {
  const sent = Date.now();
  const session = await Sessions.updateReturning(
    { sessionId },
    { UpdateExpression: "SET lastSeen = :now", ConditionExpression: "attribute_exists(sessionId)", ExpressionAttributeValues: { ":now": now.toISOString() } },
    "ALL_NEW",
  );
  keepSessionCopy(session, sent);
  if (session) await indexIfUnindexed(session, now);
  return session;
}

/** Every session, tasks included: a table bounded by the number of agents. */
export const listSessions = (): Promise<SessionItem[]> => Sessions.scan();

/**
 * Sessions not heard from since `before`, quietest first: their keys from the index (keys only),
 * then the items by key — those heard from meanwhile left out.
 */
export async function quietSessions(before: Date): Promise<SessionItem[]> {
  const shards = await Promise.all(quietSessionsQueries(before).map((query) => Sessions.query(query, SessionId)));
  const sessions = await Sessions.batchGet(shards.flat().map(({ sessionId }) => ({ sessionId })));
  const cutoff = before.toISOString();
  return sessions.filter((s) => s.lastSeen < cutoff).sort((a, b) => a.lastSeen.localeCompare(b.lastSeen));
}

/** When a session may be ended: not if it was seen after `seenBefore`, nor (`detachedOnly`) while on a connection. */
export interface EndCondition {
  seenBefore?: string;
  detachedOnly?: boolean;
}

/**
 * Deletes a session and returns it as it was — the tasks it held at that moment, which no
 * later write can add to (a reservation needs the item) — unless `unless` says its agent came
 * back (leave it be); undefined then, or if it was gone already.
 */
export function deleteSession(sessionId: string, unless: EndCondition = {}): Promise<SessionItem | undefined> {
  forgetSessionCopy(sessionId);
  const conditions = ["attribute_exists(sessionId)"];
  if (unless.seenBefore) conditions.push("lastSeen <= :seen");
  if (unless.detachedOnly) conditions.push("attribute_not_exists(connectionId)");
  return Sessions.deleteReturning(
    { sessionId },
    { expression: conditions.join(" AND "), ...(unless.seenBefore ? { values: { ":seen": unless.seenBefore } } : {}) },
  );
}

/** The tasks a session holds, each with its record. */
export const heldTasks = (session: SessionItem): [string, SessionTask][] => Object.entries(session.tasks);

export type Attach =
  | { ok: true; session: SessionItem; previousConnectionId?: string }
  /** `retry`: nothing is wrong with the credential; the agent should connect again. */
  | { ok: false; reason: string; retry: boolean };

/** Tries at creating or resuming a session whose item keeps ending under the attempt. */
const ATTACH_TRIES = 3;

/**
 * Puts a session on a connection: a new one is created, a known one is resumed if the
 * secret matches. Returns the session as it was, and the connection it had before. A session
 * ended meanwhile (the sweeper, a disconnect check) is created afresh under the same id: the
 * agent keeps its credential, and the tasks it lists are cancelled (they went back).
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
  // Its class is listed before the session enters the class's index partitions, so a wake that finds it can read it.
  await registerAgentClass(capabilityClassOf(input.agent), now);
  const capKey = capabilityKeyOf(credential.id, input.agent);
  const fresh: SessionItem = {
    sessionId: credential.id,
    secretHash: hashSecret(credential.secret),
    tokenId: input.tokenId,
    shard: sessionShard(shardOf(credential.id)),
    connectionId: input.connectionId,
    agent: input.agent,
    runningTasks: 0,
    capKey,
    idleSlots: input.agent.concurrentTasks,
    tasks: {},
    createdAt: at,
    lastSeen: at,
  };
  for (let tries = 0; tries < ATTACH_TRIES; tries++) {
    if (await Sessions.put(fresh, { expression: "attribute_not_exists(sessionId)" })) {
      forgetFullClass(capabilityClassOf(input.agent).classId);
      return { ok: true, session: fresh };
    }
    const known = await getSession(credential.id);
    // Ended between the create and this read: create it afresh.
    if (!known) continue;
    if (!hashMatches(credential.secret, known.secretHash)) {
      return { ok: false, reason: "this session id belongs to another agent's credential", retry: false };
    }
    const before = await Sessions.updateReturning(
      { sessionId: credential.id },
      {
        // Back in its class's index, with its slots counted afresh (they were AWAY_SLOTS while it was away).
        UpdateExpression:
          "SET connectionId = :conn, #agent = :agent, tokenId = :token, lastSeen = :now, capKey = :cap, idleSlots = :limit - runningTasks REMOVE draining",
        ConditionExpression: "secretHash = :hash",
        ExpressionAttributeNames: { "#agent": "agent" },
        ExpressionAttributeValues: {
          ":conn": input.connectionId,
          ":agent": input.agent,
          ":token": input.tokenId,
          ":now": at,
          ":hash": known.secretHash,
          ":cap": capKey,
          ":limit": input.agent.concurrentTasks,
        },
      },
      "ALL_OLD",
    );
    // Ended between the read and this resume: create it afresh.
    if (!before) continue;
    forgetFullClass(capabilityClassOf(input.agent).classId);
    return {
      ok: true,
      session: {
        ...before,
        connectionId: input.connectionId,
        agent: input.agent,
        lastSeen: at,
        capKey,
        idleSlots: input.agent.concurrentTasks - before.runningTasks,
      },
      ...(before.connectionId && before.connectionId !== input.connectionId ? { previousConnectionId: before.connectionId } : {}),
    };
  }
  return { ok: false, reason: "the session kept ending while it was being attached", retry: true };
}
