import { canMove, PROPAGATING, UNSETTLED } from "@nimbus/core";
import type { DerivationStatus } from "@nimbus/protocol";
import { allOf } from "./condition-terms.ts";
import { DerivationItem, type HistoryEntry } from "./items.ts";
import { indexShard, indexShards, SHARD } from "./keys.ts";
import type { Condition } from "./table.ts";
import { walkQuery, walkShards, type Position, type Walked } from "./index-walk.ts";
import { Derivations } from "./tables.ts";

export const getDerivation = (drvPath: string): Promise<DerivationItem | undefined> => Derivations.get({ drvPath });

export async function getDerivations(drvPaths: readonly string[]): Promise<Map<string, DerivationItem>> {
  const unique = [...new Set(drvPaths)];
  const items = await Derivations.batchGet(unique.map((drvPath) => ({ drvPath })));
  return new Map(items.map((item) => [item.drvPath, item]));
}

/** Creates the derivation unless it exists; returns whether this call created it. */
export const createDerivation = (item: DerivationItem): Promise<boolean> =>
  Derivations.put(item, { expression: "attribute_not_exists(drvPath)" });

/**
 * The settle flow is done with it: out of the sweeper's byUnpropagated index — unless it moved
 * on meanwhile (a rebuild that settled again needs its own propagation).
 */
export async function markPropagated(drv: Pick<DerivationItem, "drvPath" | "version">): Promise<void> {
  const unmoved = versionIs(drv);
  await Derivations.update(
    { drvPath: drv.drvPath },
    {
      UpdateExpression: "REMOVE propagateShard, propagatedThrough",
      ConditionExpression: unmoved.expression,
      ...(unmoved.names ? { ExpressionAttributeNames: unmoved.names } : {}),
      ...(unmoved.values ? { ExpressionAttributeValues: unmoved.values } : {}),
    },
  );
}

export interface Move {
  from: readonly DerivationStatus[];
  to: DerivationStatus;
  set?: Record<string, unknown>;
  remove?: string[];
  /** `attempt = attempt + add` in the same write. */
  addAttempt?: number;
  /**
   * An extra condition, with placeholders of its own (not the move's: `#status`, `#v`, `#history`,
   * `#set<i>`, `#rm<i>`, `:to`, `:now`, `:v0`, `:v1`, `:historyMove`, `:historyNone`, `:set<i>`, `:from<i>`):
   * terms joined by AND, as the move's own are (storage/condition-terms.ts `allOf`).
   */
  condition?: Condition;
  /**
   * What the status history records of the move besides its time and status (`agent`, `reason`,
   * …); a failure's reason, the builder and a retry's `lastError` in `set` are taken by themselves.
   */
  note?: Pick<HistoryEntry, "agent" | "reason" | "exitCode" | "ended">;
  /**
   * Takes back the move that left the history this long (its last entry): that entry is
   * replaced by this move's instead of one appended, and the write is conditional on the length.
   * A hand-over undone (flow/hand-over.ts) so leaves no build attempt that never was.
   */
  replacesLastOf?: number;
}

/** The history keeps at most this many moves; past it a writer cuts it to the last HISTORY_KEPT. */
export const HISTORY_LIMIT = 100;
export const HISTORY_KEPT = 50;

/** The history entry a move appends. */
function historyEntry(move: Move, now: Date): HistoryEntry {
  const set = move.set as { failure?: { reason?: string; exitCode?: number }; builtBy?: { hostname?: string }; lastError?: string } | undefined;
  const agent = move.note?.agent ?? set?.builtBy?.hostname;
  const reason = move.note?.reason ?? set?.failure?.reason ?? set?.lastError;
  const exitCode = move.note?.exitCode ?? set?.failure?.exitCode;
  return {
    at: now.toISOString(),
    status: move.to,
    ...(move.addAttempt ? { bump: true as const } : {}),
    ...(agent !== undefined ? { agent } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(exitCode !== undefined ? { exitCode } : {}),
    ...(move.note?.ended ? { ended: move.note.ended } : {}),
  };
}

/**
 * A new item ready when created (nothing pending: no inputs, or each read with outputs), born
 * queued: as the item `createDerivation` would write, then moved waiting → queued (version 1,
 * both history entries, the sweeper's index), in the one conditional write that creates it.
 */
export function bornQueued(item: DerivationItem, now: Date): DerivationItem {
  const queued = historyEntry({ from: ["waiting"], to: "queued" }, now);
  return { ...item, status: "queued", version: (item.version ?? 0) + 1, queuedAt: queued.at, queuedShard: indexShard(SHARD.queued, item.drvPath), history: [...(item.history ?? []), queued] };
}

/**
 * Moves a derivation's status with one conditional write, so two writers (or one message
 * delivered twice) can never both move it, and counts the move in `version`. Returns the item
 * after the move, or undefined if its status was not one of `from` (or the extra condition failed).
 */
export async function moveDerivation(drvPath: string, move: Move, now = new Date()): Promise<DerivationItem | undefined> {
  // The pure rule (packages/core/src/statuses.ts) decides which moves exist; a write outside it is a bug.
  const illegal = move.from.filter((from) => !canMove(from, move.to));
  if (illegal.length) throw new Error(`no status move ${illegal.join("/")} → ${move.to} (${drvPath})`);
  const names: Record<string, string> = { "#status": "status", "#updatedAt": "updatedAt", "#v": "version", "#history": "history", ...move.condition?.names };
  const replacing = move.replacesLastOf;
  const values: Record<string, unknown> = {
    ":to": move.to,
    ":now": now.toISOString(),
    ":v0": 0,
    ":v1": 1,
    ...(replacing === undefined
      ? { ":historyMove": [historyEntry(move, now)], ":historyNone": [] }
      : { ":historyEntry": historyEntry(move, now), ":historyLength": replacing }),
    ...move.condition?.values,
  };
  // The status history grows in the same write that moves the status: no request of its own.
  const sets = [
    "#status = :to",
    "#updatedAt = :now",
    "#v = if_not_exists(#v, :v0) + :v1",
    replacing === undefined
      ? "#history = list_append(if_not_exists(#history, :historyNone), :historyMove)"
      : `#history[${replacing - 1}] = :historyEntry`,
  ];
  // Queued derivations (and only they) are in the sparse indexes the sweeper reads.
  const set = { ...move.set };
  const remove = [...(move.remove ?? [])];
  if (move.to === "queued") {
    set.queuedShard = indexShard(SHARD.queued, drvPath);
    set.queuedAt ??= now.toISOString();
  } else {
    remove.push("queuedShard", "dueShard", "dueAt");
  }
  // Leased builds (and only they) are in the byBuilding index.
  if (move.to === "building") set.buildingShard = indexShard(SHARD.building, drvPath);
  else remove.push("buildingShard");
  // Until the settle flow has told its dependents and jobs, a settled derivation stays in this
  // index; one that moves on (a rebuild) has nothing left to tell. A new status is told from
  // its first dependent on.
  if (PROPAGATING.includes(move.to)) set.propagateShard = indexShard(SHARD.unpropagated, drvPath);
  else remove.push("propagateShard");
  remove.push("propagatedThrough");
  // The registrations of a settled derivation do not note their jobs on it: once it moves again, the byDrv index says who needs it.
  if (move.from.some((from) => !UNSETTLED.includes(from))) remove.push("jobIds");
  for (const [i, [name, value]] of Object.entries(set).entries()) {
    names[`#set${i}`] = name;
    values[`:set${i}`] = value;
    sets.push(`#set${i} = :set${i}`);
  }
  if (move.addAttempt) {
    names["#attempt"] = "attempt";
    values[":attemptAdd"] = move.addAttempt;
    sets.push("#attempt = #attempt + :attemptAdd");
  }
  const removes = [...new Set(remove)].map((name, i) => {
    names[`#rm${i}`] = name;
    return `#rm${i}`;
  });
  const fromList = move.from.map((status, i) => {
    values[`:from${i}`] = status;
    return `:from${i}`;
  });
  const conditions = [`#status IN (${fromList.join(", ")})`];
  if (move.condition) conditions.push(move.condition.expression);
  if (replacing !== undefined) conditions.push("size(#history) = :historyLength");
  const moved = await Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
      ConditionExpression: allOf(...conditions),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
    "ALL_NEW",
  );
  if (moved?.history && moved.history.length > HISTORY_LIMIT) await trimHistory(drvPath, moved.history.length);
  return moved;
}

/**
 * Cuts the history to its last HISTORY_KEPT moves, once every HISTORY_LIMIT − HISTORY_KEPT moves,
 * so the item cannot grow without bound. Conditional on the length seen: two writers never both cut.
 */
async function trimHistory(drvPath: string, length: number): Promise<void> {
  const cut = length - HISTORY_KEPT;
  await Derivations.update(
    { drvPath },
    {
      UpdateExpression: `REMOVE ${Array.from({ length: cut }, (_, i) => `#history[${i}]`).join(", ")}`,
      ConditionExpression: "size(#history) = :length",
      ExpressionAttributeNames: { "#history": "history" },
      ExpressionAttributeValues: { ":length": length },
    },
  );
}

/**
 * A part of a split event has arrived (its inputs' rows are in): takes its marker off a waiting
 * derivation. Returns the item after, or undefined if it is not waiting.
 */
export function clearPart(drvPath: string, marker: string): Promise<DerivationItem | undefined> {
  return Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: "DELETE pendingParts :marker",
      ConditionExpression: "#status = :waiting",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":marker": new Set([marker]), ":waiting": "waiting" },
    },
    "ALL_NEW",
  );
}

/**
 * A split derivation whose registrar's evaluation ended with parts missing is taken over by
 * `jobId` (its part's input rows are in): the markers of its other parts replace those still
 * missing, and where its .drv and inputs are (when it reports it) becomes this registration's.
 * Only while it waits and `previous` still registers it; the item after, or undefined.
 */
export function adoptParts(
  drvPath: string,
  previous: string | undefined,
  jobId: string,
  markers: readonly string[],
  needs?: DerivationItem["needs"],
): Promise<DerivationItem | undefined> {
  const sets = ["registeredBy = :job", ...(markers.length ? ["pendingParts = :markers"] : []), ...(needs ? ["needs = :needs"] : [])];
  return Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: `SET ${sets.join(", ")}${markers.length ? "" : " REMOVE pendingParts"}`,
      ConditionExpression: `#status = :waiting AND ${previous ? "registeredBy = :previous" : "attribute_not_exists(registeredBy)"}`,
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":job": jobId,
        ":waiting": "waiting",
        ...(previous ? { ":previous": previous } : {}),
        ...(markers.length ? { ":markers": new Set(markers) } : {}),
        ...(needs ? { ":needs": needs } : {}),
      },
    },
    "ALL_NEW",
  );
}

/** A derivation's `jobIds` names at most this many jobs; past it, its moves ask the byDrv index. */
export const MAX_KNOWN_JOBS = 25;

/**
 * Notes on the derivation that `jobId` needs it, where it keeps that list whole (storage/items.ts
 * `jobIds`): a registration of an unsettled derivation does, before it looks at the derivation
 * again (so a move it does not see has it in the list). Past MAX_KNOWN_JOBS the list is dropped.
 */
export async function addNeedingJob(drvPath: string, jobId: string): Promise<void> {
  const after = await Derivations.updateReturning(
    { drvPath },
    { UpdateExpression: "ADD jobIds :job", ConditionExpression: "attribute_exists(jobIds)", ExpressionAttributeValues: { ":job": new Set([jobId]) } },
    "UPDATED_NEW",
    JobIdsOnly,
  );
  if (after?.jobIds && after.jobIds.size > MAX_KNOWN_JOBS) {
    await Derivations.update(
      { drvPath },
      { UpdateExpression: "REMOVE jobIds", ConditionExpression: "size(jobIds) > :max", ExpressionAttributeValues: { ":max": MAX_KNOWN_JOBS } },
    );
  }
}

const JobIdsOnly = DerivationItem.pick({ jobIds: true });

/** A condition that the derivation is still at the version read (no status move since). */
export function versionIs(drv: Pick<DerivationItem, "version">): Condition {
  return drv.version === undefined
    ? { expression: "attribute_not_exists(#version)", names: { "#version": "version" } }
    : { expression: "#version = :version", names: { "#version": "version" }, values: { ":version": drv.version } };
}

/** A condition that the derivation's lease is still `taskId`'s (and `sessionId`'s, when named): only its holder moves it. */
export function leaseIs(taskId: string, sessionId?: string): Condition {
  return sessionId === undefined
    ? { expression: "lease.taskId = :task", values: { ":task": taskId } }
    : { expression: "lease.taskId = :task AND lease.sessionId = :session", values: { ":task": taskId, ":session": sessionId } };
}

/** Retries whose back-off is over, longest due first (the byDueAt index, every shard). */
export const dueRetries = (now: Date): AsyncGenerator<Walked<DerivationItem>> =>
  walkShards(
    indexShards(SHARD.due),
    (shard) =>
      walkQuery(Derivations, {
        IndexName: "byDueAt",
        KeyConditionExpression: "dueShard = :d AND dueAt <= :now",
        ExpressionAttributeValues: { ":d": shard, ":now": now.toISOString() },
      }),
    (drv) => drv.dueAt ?? "",
  );

/** Queued derivations not sent since `before`, oldest first, from `startKey` on; retries waiting out a back-off left out (the byQueuedAt index). */
export const staleQueued = (before: Date, startKey?: Position): AsyncGenerator<Walked<DerivationItem>> =>
  walkShards(
    indexShards(SHARD.queued),
    (shard, start) =>
      walkQuery(
        Derivations,
        {
          IndexName: "byQueuedAt",
          KeyConditionExpression: "queuedShard = :q AND queuedAt < :before",
          FilterExpression: "attribute_not_exists(dueShard)",
          ExpressionAttributeValues: { ":q": shard, ":before": before.toISOString() },
        },
        start,
      ),
    (drv) => drv.queuedAt ?? "",
    startKey,
  );

/** A read of each shard of the byBuilding index (leased builds, and only they, are in it: bounded by the agents' slots). */
const onBuildingShards = async <T>(read: (shard: string) => Promise<T[]>): Promise<T[]> => (await Promise.all(indexShards(SHARD.building).map(read))).flat();

/** Builds leased since before `before` (the byBuilding index). */
export const leasedBuilds = (before: Date): Promise<DerivationItem[]> =>
  onBuildingShards((shard) =>
    Derivations.query({
      IndexName: "byBuilding",
      KeyConditionExpression: "buildingShard = :b AND updatedAt < :before",
      ExpressionAttributeValues: { ":b": shard, ":before": before.toISOString() },
    }),
  );

/**
 * Every build under way, by path and the jobs its item names (the byBuilding index, read
 * eventually consistently): bounded by the agents' slots, not by any job's size.
 */
export const buildsUnderWay = (): Promise<Pick<DerivationItem, "drvPath" | "jobIds">[]> =>
  onBuildingShards((shard) =>
    Derivations.query(
      { IndexName: "byBuilding", KeyConditionExpression: "buildingShard = :b", ExpressionAttributeValues: { ":b": shard }, ProjectionExpression: "drvPath, jobIds" },
      DerivationItem.pick({ drvPath: true, jobIds: true }),
    ),
  );

/**
 * Settled (or a settle's page noted) before `before`, from `from` on (an ISO time), oldest first
 * (the byUnpropagated index): those whose dependents and jobs may not have been told. A settle
 * told in one invocation stays in it (core `settledLookFrom`).
 */
export const unpropagated = (before: Date, from?: string): AsyncGenerator<Walked<DerivationItem>> =>
  walkShards(
    indexShards(SHARD.unpropagated),
    (shard) =>
      walkQuery(Derivations, {
        IndexName: "byUnpropagated",
        KeyConditionExpression: from === undefined ? "propagateShard = :p AND updatedAt < :before" : "propagateShard = :p AND updatedAt BETWEEN :from AND :before",
        ExpressionAttributeValues: { ":p": shard, ":before": before.toISOString(), ...(from === undefined ? {} : { ":from": from }) },
      }),
    (drv) => drv.updatedAt,
  );

/**
 * A settle that must stop half-way (out of time, or its Lambda died) notes the last dependent
 * it told, so the next one goes on after it — only while the derivation is still at the version
 * that settle told (a rebuild settled again is told from its first dependent) and not yet
 * propagated. Its time in the byUnpropagated index moves to `now`, so the sweeper's look at
 * recent settles finds it if the next page is lost. Whether it did.
 */
export async function notePropagatedThrough(drv: Pick<DerivationItem, "drvPath" | "version">, dependent: string, now = new Date()): Promise<boolean> {
  const unmoved = versionIs(drv);
  return Derivations.update(
    { drvPath: drv.drvPath },
    {
      UpdateExpression: "SET propagatedThrough = :after, #updatedAt = :now",
      ConditionExpression: `${unmoved.expression} AND attribute_exists(propagateShard)`,
      ExpressionAttributeNames: { "#updatedAt": "updatedAt", ...unmoved.names },
      ExpressionAttributeValues: { ":after": dependent, ":now": now.toISOString(), ...unmoved.values },
    },
  );
}

/** Claims one re-send of a queued derivation as read (same send time, same attempt); whether this call did. */
export function claimResend(drv: Pick<DerivationItem, "drvPath" | "queuedAt" | "attempt">, now: Date): Promise<boolean> {
  return Derivations.update(
    { drvPath: drv.drvPath },
    {
      UpdateExpression: "SET queuedAt = :now REMOVE dueShard, dueAt",
      ConditionExpression: "#status = :queued AND queuedAt = :seen AND attempt = :attempt",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":now": now.toISOString(), ":queued": "queued", ":seen": drv.queuedAt, ":attempt": drv.attempt },
    },
  );
}
