/**
 * Writes to the Sessions table, and reads of a session's load (its tasks left out). What a
 * session holds is read whole by flow/sessions.ts, whose schema knows the task kinds.
 */
import { CAPABILITY_SHARDS, capabilityClassOf, capabilityKey, capabilityKeysOf, shardOf, type CapabilityClass } from "@nimbus/core";
import { type CacheReport, cacheProblem } from "@nimbus/protocol";
import { z } from "zod";
import { listAgentClasses, registerAgentClass } from "./agent-classes.ts";
import { forgetFullClass } from "./full-class-beliefs.ts";
import type { SessionFields } from "./items.ts";
import { SHARD, sessionShard } from "./keys.ts";
import { keepSessionCopy, SessionWithTasks } from "./session-copies.ts";
import type { Update } from "./table.ts";
import { SessionLoads } from "./tables.ts";

/** What a session records of a task it holds: its kind and when it started, and what that kind adds. */
export interface HeldTaskRecord {
  kind: string;
  startedAt: string;
}

const updateSession = (sessionId: string, update: Update) => SessionLoads.update({ sessionId }, update);

/** An update that returns the session after it, kept as this handler's copy of it (storage/session-copies.ts); undefined if refused. */
async function updateSessionReturning(sessionId: string, update: Update): Promise<SessionWithTasks | undefined> {
  const sent = Date.now();
  return keepSessionCopy(await SessionLoads.updateReturning({ sessionId }, update, "ALL_NEW", SessionWithTasks), sent);
}

export const getSessionLoad = (sessionId: string): Promise<SessionFields | undefined> => SessionLoads.get({ sessionId });

/** Sessions by id (missing ones left out), read consistently. */
export const getSessionLoads = (sessionIds: readonly string[]): Promise<SessionFields[]> => SessionLoads.batchGet(sessionIds.map((sessionId) => ({ sessionId })));

/** Every session's load: a small table, bounded by the number of agents. */
export const listSessionLoads = (): Promise<SessionFields[]> => SessionLoads.scan();

/**
 * `idleSlots` while the agent is away: far below any count of slots, so the sessions of a
 * class that are away sort after the full ones, and no wake reads them. Its hello on a new
 * connection sets the count again.
 */
export const AWAY_SLOTS = -1_000_000;

/** The byCapability index entry of a session of this agent: its class's partition for the session's shard. */
export const capabilityKeyOf = (sessionId: string, agent: SessionFields["agent"]): string =>
  capabilityKey(capabilityClassOf(agent).classId, shardOf(sessionId));

/**
 * Sessions of these classes with a free slot, most free slots first: up to `wanted` from each
 * class (the classes asked at once), its shards one after the other from a random one until
 * it gave that many. From the index, so a little behind the table (a slot reservation is what
 * decides).
 */
export async function idleSessionsOf(classes: readonly CapabilityClass[], wanted: number): Promise<SessionFields[]> {
  const ofClass = async (klass: CapabilityClass) => {
    const keys = capabilityKeysOf(klass.classId);
    const first = Math.floor(Math.random() * keys.length);
    const found: SessionFields[] = [];
    for (let i = 0; i < keys.length && found.length < wanted; i++) {
      found.push(
        ...(await SessionLoads.firstPage({
          IndexName: "byCapability",
          KeyConditionExpression: "capKey = :key AND idleSlots > :none",
          ExpressionAttributeValues: { ":key": keys[(first + i) % keys.length], ":none": 0 },
          ScanIndexForward: false,
          Limit: wanted - found.length,
        })),
      );
    }
    return found;
  };
  return (await Promise.all(classes.map(ofClass))).flat();
}

/** A session's key, as keys-only indexes give it. */
export const SessionId = z.object({ sessionId: z.string() });

/** The byClass query of one shard of a class: the ids of its sessions, whose entries stay put while their slots change. */
const ofClass = (key: string) => ({ IndexName: "byClass" as const, KeyConditionExpression: "capKey = :key", ExpressionAttributeValues: { ":key": key } });

/**
 * Whether a class has a session that is not draining: its shards asked one after the other, until one has. Asked of
 * `byClass`, whose entry of a session stays put while its free slots change (byCapability's moves, and a read then
 * could miss it: an evaluation would leave its system out, the sweeper forget a class in use).
 */
export async function hasSessions(klass: CapabilityClass): Promise<boolean> {
  for (const key of capabilityKeysOf(klass.classId)) {
    const first = await SessionLoads.firstPage(
      { ...ofClass(key), Limit: 1 },
      SessionId,
    );
    if (first.length > 0) return true;
  }
  return false;
}

/**
 * The systems of the agents whose session is not draining (connected or away): for each system,
 * the classes that have it are looked into until one has a session — a few small reads per
 * system however many agents there are. The classes are read afresh, not from this handler's copy.
 */
export async function systemsWithSessions(): Promise<string[]> {
  const classes = await listAgentClasses({ fresh: true });
  const checked = new Map<string, Promise<boolean>>();
  const has = (klass: CapabilityClass) => {
    if (!checked.has(klass.classId)) checked.set(klass.classId, hasSessions(klass));
    return checked.get(klass.classId)!;
  };
  const systems = [...new Set(classes.flatMap((c) => c.capabilities.systems))];
  const found = await Promise.all(
    systems.map(async (system) => {
      for (const klass of classes.filter((c) => c.capabilities.systems.includes(system))) if (await has(klass)) return [system];
      return [];
    }),
  );
  return found.flat();
}

/**
 * Every session of these classes that is not draining — connected or away, free or full (all shards). `settled`: by
 * id from `byClass`, then by key — a request more, for a read that must not miss a session whose free slots change
 * meanwhile (see `hasSessions`), as before deciding that no agent can take a build.
 */
export async function sessionsOf(classes: readonly CapabilityClass[], options: { settled?: boolean } = {}): Promise<SessionFields[]> {
  const keys = classes.flatMap((c) => capabilityKeysOf(c.classId));
  if (options.settled) {
    const ids = await Promise.all(keys.map((key) => SessionLoads.query(ofClass(key), SessionId)));
    const sessions = await getSessionLoads(ids.flat().map((s) => s.sessionId));
    // Read by key after the index: one that drained meanwhile is no taker.
    return sessions.filter((s) => s.capKey !== undefined);
  }
  const all = await Promise.all(
    keys.map((key) =>
      SessionLoads.query({ IndexName: "byCapability", KeyConditionExpression: "capKey = :key", ExpressionAttributeValues: { ":key": key }, ScanIndexForward: false }),
    ),
  );
  return all.flat();
}

export async function touchSession(sessionId: string, now: Date): Promise<void> {
  const session = await updateSessionReturning(sessionId, {
    UpdateExpression: "SET lastSeen = :now",
    ConditionExpression: "attribute_exists(sessionId)",
    ExpressionAttributeValues: { ":now": now.toISOString() },
  });
  if (session) await indexIfUnindexed(session, now);
}

/**
 * A session written before the byCapability index existed (no `capKey`) joins it at its agent's
 * next heartbeat, once: until then no wake finds it and no placement counts it.
 */
export async function indexIfUnindexed(session: SessionFields, now: Date): Promise<void> {
  if (session.capKey !== undefined || session.draining || !session.connectionId) return;
  await registerAgentClass(capabilityClassOf(session.agent), now);
  const indexed = await updateSession(session.sessionId, {
    UpdateExpression: "SET capKey = :cap, idleSlots = :limit - runningTasks",
    ConditionExpression: "attribute_not_exists(capKey) AND attribute_not_exists(draining) AND connectionId = :conn",
    ExpressionAttributeValues: { ":cap": capabilityKeyOf(session.sessionId, session.agent), ":limit": session.agent.concurrentTasks, ":conn": session.connectionId },
  });
  if (indexed) slotFreed(session);
}

/** The session's connection is gone; the session (and its tasks) waits for the agent to return. Whether this call detached it. */
export function detachSession(sessionId: string, connectionId: string): Promise<boolean> {
  return updateSession(sessionId, {
    UpdateExpression: "SET idleSlots = :away REMOVE connectionId",
    ConditionExpression: "connectionId = :conn",
    ExpressionAttributeValues: { ":conn": connectionId, ":away": AWAY_SLOTS },
  });
}

/** No new work for it: it leaves the byCapability index (a draining agent takes nothing, and is no one's taker). */
export async function setDraining(sessionId: string): Promise<void> {
  await updateSession(sessionId, {
    UpdateExpression: "SET draining = :yes REMOVE capKey",
    ConditionExpression: "attribute_exists(sessionId)",
    ExpressionAttributeValues: { ":yes": true },
  });
}

/**
 * Takes one of the session's slots for a task: false when it is at its `concurrentTasks`,
 * draining, gone, or already holds that task. This is how each agent's `concurrentTasks` is
 * enforced.
 */
export async function reserveTask(sessionId: string, taskId: string, task: HeldTaskRecord, limit: number): Promise<boolean> {
  // The session after it is this handler's copy: the task's result may go on it (edges/agent-messages.ts).
  const reserved = await updateSessionReturning(sessionId, {
    // idleSlots moves with runningTasks in the same write, so the index never disagrees with the slots for long.
    UpdateExpression: "SET runningTasks = runningTasks + :one, idleSlots = if_not_exists(idleSlots, :zero) - :one, tasks.#task = :task",
    ConditionExpression:
      "attribute_exists(connectionId) AND attribute_not_exists(draining) AND runningTasks < :limit AND attribute_not_exists(tasks.#task)",
    ExpressionAttributeNames: { "#task": taskId },
    ExpressionAttributeValues: { ":one": 1, ":zero": 0, ":task": task, ":limit": limit },
  });
  return reserved !== undefined;
}

/**
 * Hands the slot of a task the session holds (`from`, not `pushing`: its slot is counted) to a
 * new task in one write: `from`'s record goes, `to`'s comes, the count stays — a release and a
 * reservation at once, so the agent never looks idle in between (docs/reliability.md, "A slot
 * handed on"). Refused unless the session holds `from` and may take `to` as `reserveTask` would
 * (connected, not draining, within `limit`, not holding `to`). Returns the load after it.
 */
export function handOverSlot(sessionId: string, from: string, to: string, task: HeldTaskRecord, limit: number): Promise<SessionFields | undefined> {
  return updateSessionReturning(sessionId, {
    UpdateExpression: "SET tasks.#to = :task REMOVE tasks.#from",
    ConditionExpression:
      "attribute_exists(connectionId) AND attribute_not_exists(draining) AND runningTasks <= :limit AND attribute_exists(tasks.#from) AND attribute_not_exists(tasks.#from.pushing) AND attribute_not_exists(tasks.#to)",
    ExpressionAttributeNames: { "#from": from, "#to": to },
    ExpressionAttributeValues: { ":task": task, ":limit": limit },
  });
}

/**
 * The write that gives a task's slot back: only if the session holds the task (reserved at
 * `startedAt`, when given), and as its record is — one whose slot was freed already
 * (`pushing`, see `freeSlotWhilePushing`) is forgotten without counting its slot a second time.
 */
function releaseUpdate(taskId: string, startedAt: string | undefined, pushing: boolean): Update {
  const values = { ...(pushing ? {} : { ":one": 1, ":zero": 0 }), ...(startedAt ? { ":started": startedAt } : {}) };
  return {
    UpdateExpression: pushing ? "REMOVE tasks.#task" : "SET runningTasks = runningTasks - :one, idleSlots = if_not_exists(idleSlots, :zero) + :one REMOVE tasks.#task",
    ConditionExpression: [
      startedAt ? "tasks.#task.startedAt = :started" : "attribute_exists(tasks.#task)",
      pushing ? "attribute_exists(tasks.#task.pushing)" : "attribute_not_exists(tasks.#task.pushing)",
    ].join(" AND "),
    ExpressionAttributeNames: { "#task": taskId },
    // DynamoDB refuses an empty map of values.
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
  };
}

/**
 * Gives a task's slot back; only the first release of a task counts (false after). With
 * `startedAt`, only the reservation made then is released, not a later one of the same task.
 * The rare task whose slot was freed already costs a second write: a condition cannot choose
 * whether to count the slot.
 */
export async function releaseTask(sessionId: string, taskId: string, startedAt?: string): Promise<boolean> {
  const freed = await updateSessionReturning(sessionId, releaseUpdate(taskId, startedAt, false));
  if (freed) slotFreed(freed);
  return freed !== undefined || updateSession(sessionId, releaseUpdate(taskId, startedAt, true));
}

/** A slot of this session came free here: this handler no longer takes its class for full (storage/full-class-beliefs.ts). */
const slotFreed = (session: Pick<SessionFields, "agent">) => forgetFullClass(capabilityClassOf(session.agent).classId);

/**
 * Gives a task's slot back (as `releaseTask`, without `startedAt`) and returns the session's
 * load after it; undefined if it did not hold the task. `pushing` says which record is expected
 * (the session's record as the caller read it); the other is tried when that was wrong.
 */
export async function releaseTaskReturning(sessionId: string, taskId: string, pushing = false): Promise<SessionFields | undefined> {
  const release = (asPushing: boolean) => updateSessionReturning(sessionId, releaseUpdate(taskId, undefined, asPushing));
  const after = (await release(pushing)) ?? (await release(!pushing));
  if (after) slotFreed(after);
  return after;
}

/**
 * Frees the slot of a build Nix is done with while its agent pushes the outputs (`build-pushing`):
 * the session keeps the task, marked `pushing`, and its lease, until the result. Only while the
 * session speaks on `connectionId`, the one the report came on. Returns the session's load after
 * it; undefined if it does not hold the task, freed its slot already, or moved to another connection.
 */
export async function freeSlotWhilePushing(sessionId: string, taskId: string, connectionId: string): Promise<SessionFields | undefined> {
  const after = await updateSessionReturning(sessionId, {
    UpdateExpression: "SET runningTasks = runningTasks - :one, idleSlots = if_not_exists(idleSlots, :zero) + :one, tasks.#task.pushing = :yes",
    ConditionExpression: "connectionId = :conn AND attribute_exists(tasks.#task) AND attribute_not_exists(tasks.#task.pushing)",
    ExpressionAttributeNames: { "#task": taskId },
    ExpressionAttributeValues: { ":one": 1, ":zero": 0, ":yes": true, ":conn": connectionId },
  });
  if (after) slotFreed(after);
  return after;
}

/**
 * `freeSlotWhilePushing` and a reservation for `to` in one write: the build goes `pushing` and
 * its slot passes straight to the next task, the count unchanged (docs/reliability.md, "A slot
 * handed on"). Refused unless the session speaks on `connectionId` and holds `from` with its slot
 * counted, and may take `to` as `reserveTask` would. Returns the load after it.
 */
export function handOnPushingSlot(
  sessionId: string,
  from: string,
  connectionId: string,
  to: string,
  task: HeldTaskRecord,
  limit: number,
): Promise<SessionFields | undefined> {
  return updateSessionReturning(sessionId, {
    UpdateExpression: "SET tasks.#from.pushing = :yes, tasks.#to = :task",
    ConditionExpression:
      "connectionId = :conn AND attribute_not_exists(draining) AND runningTasks <= :limit AND attribute_exists(tasks.#from) AND attribute_not_exists(tasks.#from.pushing) AND attribute_not_exists(tasks.#to)",
    ExpressionAttributeNames: { "#from": from, "#to": to },
    ExpressionAttributeValues: { ":yes": true, ":task": task, ":limit": limit, ":conn": connectionId },
  });
}

/** The queries of sessions not heard from since `before`: one per shard of the byLastSeenKeys index, and the unnumbered one of sessions from before shards. */
export const quietSessionsQueries = (before: Date) =>
  [SHARD.session, ...Array.from({ length: CAPABILITY_SHARDS }, (_, shard) => sessionShard(shard))].map((shard) => ({
    IndexName: "byLastSeenKeys" as const,
    KeyConditionExpression: "#shard = :shard AND lastSeen < :before",
    ExpressionAttributeNames: { "#shard": "shard" },
    ExpressionAttributeValues: { ":shard": shard, ":before": before.toISOString() },
  }));

/**
 * Whether the reports change the session's cache condition as it was read: a problem to note, or
 * one to clear. Pushes that went well to caches without a problem on record (every build's,
 * mostly) write nothing. A problem another frame noted since the read stays until the next
 * successful push to that cache clears it: the condition shown is a recent one, not an ordered log.
 */
export function cacheReportsChange(session: Pick<SessionFields, "cacheProblems">, reports: readonly CacheReport[]): boolean {
  return reports.some((report) => cacheProblem(report) !== undefined || session.cacheProblems?.[report.cache] !== undefined);
}

/**
 * Keeps the agent's cache condition: the last problem with each cache it reported (a failed
 * push, a cache it could not ask), cleared by its next successful push there.
 */
export async function noteCacheReports(session: Pick<SessionFields, "sessionId" | "cacheProblems">, reports: readonly CacheReport[], now: Date): Promise<void> {
  if (!cacheReportsChange(session, reports)) return;
  const { sessionId } = session;
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

/**
 * The agent's info changed (`agent-info`): used from now on, while the session speaks on
 * `connectionId`. Its class and slot count may change with it; a draining session stays out of
 * the index (a second write then, for a message an agent rarely sends).
 */
export async function updateSessionAgent(sessionId: string, connectionId: string, agent: SessionFields["agent"]): Promise<boolean> {
  await registerAgentClass(capabilityClassOf(agent), new Date());
  const indexed = await updateSession(sessionId, {
    UpdateExpression: "SET #agent = :agent, capKey = :cap, idleSlots = :limit - runningTasks",
    ConditionExpression: "connectionId = :conn AND attribute_not_exists(draining)",
    ExpressionAttributeNames: { "#agent": "agent" },
    ExpressionAttributeValues: { ":agent": agent, ":conn": connectionId, ":cap": capabilityKeyOf(sessionId, agent), ":limit": agent.concurrentTasks },
  });
  if (indexed) slotFreed({ agent });
  return (
    indexed ||
    updateSession(sessionId, {
      UpdateExpression: "SET #agent = :agent",
      ConditionExpression: "connectionId = :conn",
      ExpressionAttributeNames: { "#agent": "agent" },
      ExpressionAttributeValues: { ":agent": agent, ":conn": connectionId },
    })
  );
}
