import { canMove, PROPAGATING } from "@nimbus/core";
import type { DerivationStatus } from "@nimbus/protocol";
import type { DerivationItem } from "./items.ts";
import { SHARD } from "./keys.ts";
import type { Condition } from "./table.ts";
import { walkQuery, type Position, type Walked } from "./index-walk.ts";
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

/** The settle flow is done with it: out of the sweeper's byUnpropagated index. */
export async function markPropagated(drvPath: string): Promise<void> {
  await Derivations.update({ drvPath }, { UpdateExpression: "REMOVE propagateShard, propagatedThrough" });
}

export interface Move {
  from: readonly DerivationStatus[];
  to: DerivationStatus;
  set?: Record<string, unknown>;
  remove?: string[];
  /** `attempt = attempt + add` in the same write. */
  addAttempt?: number;
  /** An extra condition, with its own placeholders (`#…`/`:…` not starting with `#s`/`:s`). */
  condition?: Condition;
}

/**
 * Moves a derivation's status with one conditional write, so two writers (or one message
 * delivered twice) can never both move it. Returns the item after the move, or undefined if
 * its status was not one of `from` (or the extra condition failed).
 */
export function moveDerivation(drvPath: string, move: Move, now = new Date()): Promise<DerivationItem | undefined> {
  // The pure rule (packages/core/src/statuses.ts) decides which moves exist; a write outside it is a bug.
  const illegal = move.from.filter((from) => !canMove(from, move.to));
  if (illegal.length) throw new Error(`no status move ${illegal.join("/")} → ${move.to} (${drvPath})`);
  const names: Record<string, string> = { "#status": "status", "#updatedAt": "updatedAt", ...move.condition?.names };
  const values: Record<string, unknown> = { ":to": move.to, ":now": now.toISOString(), ...move.condition?.values };
  const sets = ["#status = :to", "#updatedAt = :now"];
  // Queued derivations (and only they) are in the sparse indexes the sweeper reads.
  const set = { ...move.set };
  const remove = [...(move.remove ?? [])];
  if (move.to === "queued") {
    set.queuedShard = SHARD.queued;
    set.queuedAt ??= now.toISOString();
  } else {
    remove.push("queuedShard", "dueShard", "dueAt");
  }
  // Until the settle flow has told its dependents and jobs, a settled derivation stays in this index;
  // a new status is told from its first dependent on.
  if (PROPAGATING.includes(move.to)) set.propagateShard = SHARD.unpropagated;
  remove.push("propagatedThrough");
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
  if (move.condition) conditions.push(`(${move.condition.expression})`);
  return Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
      ConditionExpression: conditions.join(" AND "),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
    "ALL_NEW",
  );
}

/**
 * Removes inputs that now have outputs from a waiting derivation's pending set (string-set
 * DELETE is idempotent). Returns the item after, or undefined if it is not waiting.
 */
export function clearPendingInputs(drvPath: string, inputs: readonly string[]): Promise<DerivationItem | undefined> {
  if (inputs.length === 0) return getDerivation(drvPath);
  return updateWhileWaiting(drvPath, "DELETE pendingInputs :set", inputs);
}

/**
 * A split derivation whose registrar's evaluation ended with parts missing is taken over by
 * `jobId`: its inputs, part markers and (when it reports them) where its .drv and inputs are
 * become this registration's. Only while it waits and `previous` still registers it; the item
 * after, or undefined.
 */
export function adoptParts(
  drvPath: string,
  previous: string | undefined,
  jobId: string,
  inputs: readonly string[],
  pending: readonly string[],
  needs?: DerivationItem["needs"],
): Promise<DerivationItem | undefined> {
  const sets = [
    "registeredBy = :job",
    ...(inputs.length ? ["inputDrvs = :inputs"] : []),
    ...(pending.length ? ["pendingInputs = :pending"] : []),
    ...(needs ? ["needs = :needs"] : []),
  ];
  const removes = [...(inputs.length ? [] : ["inputDrvs"]), ...(pending.length ? [] : ["pendingInputs"])];
  return Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
      ConditionExpression: `#status = :waiting AND ${previous ? "registeredBy = :previous" : "attribute_not_exists(registeredBy)"}`,
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":job": jobId,
        ":waiting": "waiting",
        ...(previous ? { ":previous": previous } : {}),
        ...(inputs.length ? { ":inputs": new Set(inputs) } : {}),
        ...(pending.length ? { ":pending": new Set(pending) } : {}),
        ...(needs ? { ":needs": needs } : {}),
      },
    },
    "ALL_NEW",
  );
}

/** Adds inputs (from another part of a split event) to a waiting derivation, pending until they succeed. */
export function addInputs(drvPath: string, inputs: readonly string[]): Promise<DerivationItem | undefined> {
  if (inputs.length === 0) return getDerivation(drvPath);
  return updateWhileWaiting(drvPath, "ADD inputDrvs :set, pendingInputs :set", inputs);
}

/** An update of string sets (`:set`) that applies only while the derivation waits; the item after, or undefined. */
function updateWhileWaiting(drvPath: string, expression: string, set: readonly string[]): Promise<DerivationItem | undefined> {
  return Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: expression,
      ConditionExpression: "#status = :waiting",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":set": new Set(set), ":waiting": "waiting" },
    },
    "ALL_NEW",
  );
}

/** Retries whose back-off is over, longest due first (the byDueAt index). */
export const dueRetries = (now: Date): AsyncGenerator<Walked<DerivationItem>> =>
  walkQuery(Derivations, {
    IndexName: "byDueAt",
    KeyConditionExpression: "dueShard = :d AND dueAt <= :now",
    ExpressionAttributeValues: { ":d": SHARD.due, ":now": now.toISOString() },
  });

/** Queued derivations not sent since `before`, oldest first, from `startKey` on; retries waiting out a back-off left out (the byQueuedAt index). */
export const staleQueued = (before: Date, startKey?: Position): AsyncGenerator<Walked<DerivationItem>> =>
  walkQuery(
    Derivations,
    {
      IndexName: "byQueuedAt",
      KeyConditionExpression: "queuedShard = :q AND queuedAt < :before",
      FilterExpression: "attribute_not_exists(dueShard)",
      ExpressionAttributeValues: { ":q": SHARD.queued, ":before": before.toISOString() },
    },
    startKey,
  );

/** Settled before `before` and dependents not yet told, oldest first (the byUnpropagated index). */
export const unpropagated = (before: Date): AsyncGenerator<Walked<DerivationItem>> =>
  walkQuery(Derivations, {
    IndexName: "byUnpropagated",
    KeyConditionExpression: "propagateShard = :p AND updatedAt < :before",
    ExpressionAttributeValues: { ":p": SHARD.unpropagated, ":before": before.toISOString() },
  });

/**
 * A settle that must stop half-way (out of time, or its Lambda died) notes the last dependent
 * it told, so the next one goes on after it — only while the derivation is still in that
 * settled status and not yet propagated.
 */
export async function notePropagatedThrough(drv: Pick<DerivationItem, "drvPath" | "status">, dependent: string): Promise<void> {
  await Derivations.update(
    { drvPath: drv.drvPath },
    {
      UpdateExpression: "SET propagatedThrough = :after",
      ConditionExpression: "#status = :status AND attribute_exists(propagateShard)",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":after": dependent, ":status": drv.status },
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
