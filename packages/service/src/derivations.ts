import { GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { canMove } from "@nimbus/core";
import type { DerivationStatus } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { batchGet, unlessConditionFails } from "./dynamo-batch.ts";
import type { DerivationItem } from "./items.ts";
import { tableName } from "./resource.ts";

export async function getDerivation(drvPath: string): Promise<DerivationItem | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: tableName("Derivations"), Key: { drvPath }, ConsistentRead: true }),
  );
  return Item as DerivationItem | undefined;
}

export async function getDerivations(drvPaths: readonly string[]): Promise<Map<string, DerivationItem>> {
  const unique = [...new Set(drvPaths)];
  const items = await batchGet<DerivationItem>(tableName("Derivations"), unique.map((drvPath) => ({ drvPath })));
  return new Map(items.map((item) => [item.drvPath, item]));
}

/** Creates the derivation unless it exists; returns whether this call created it. */
export async function createDerivation(item: DerivationItem): Promise<boolean> {
  const put = new PutCommand({ TableName: tableName("Derivations"), Item: item, ConditionExpression: "attribute_not_exists(drvPath)" });
  return (await unlessConditionFails(dynamo().send(put))) !== undefined;
}

const SETTLING: readonly DerivationStatus[] = ["succeeded", "failed", "dependency-failed"];

/** `settled()` is done with it: out of the sweeper's index. */
export async function markPropagated(drvPath: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({ TableName: tableName("Derivations"), Key: { drvPath }, UpdateExpression: "REMOVE propagateShard" }),
  );
}

export interface Move {
  from: readonly DerivationStatus[];
  to: DerivationStatus;
  set?: Record<string, unknown>;
  remove?: string[];
  /** `attempt = attempt + add` in the same write. */
  addAttempt?: number;
  /** An extra condition, with its own placeholders (`#…`/`:…` not starting with `#s`/`:s`). */
  condition?: { expression: string; names?: Record<string, string>; values?: Record<string, unknown> };
}

/**
 * Moves a derivation's status with one conditional write, so two writers (or one message
 * delivered twice) can never both move it. Returns the item after the move, or undefined if
 * its status was not one of `from` (or the extra condition failed).
 */
export async function moveDerivation(drvPath: string, move: Move, now = new Date()): Promise<DerivationItem | undefined> {
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
    set.queuedShard = "q";
    set.queuedAt ??= now.toISOString();
  } else {
    remove.push("queuedShard", "dueShard", "dueAt");
  }
  // Until `settled()` has told its dependents and jobs, a settled derivation stays in this index.
  if (SETTLING.includes(move.to)) set.propagateShard = "p";
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
  const result = await unlessConditionFails(
    dynamo().send(
      new UpdateCommand({
        TableName: tableName("Derivations"),
        Key: { drvPath },
        UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
        ConditionExpression: conditions.join(" AND "),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: "ALL_NEW",
      }),
    ),
  );
  return result?.Attributes as DerivationItem | undefined;
}

/**
 * Removes inputs that now have outputs from a waiting derivation's pending set (string-set
 * DELETE is idempotent). Returns the item after, or undefined if it is not waiting.
 */
export async function clearPendingInputs(drvPath: string, inputs: readonly string[]): Promise<DerivationItem | undefined> {
  if (inputs.length === 0) return getDerivation(drvPath);
  return updateWhileWaiting(drvPath, "DELETE pendingInputs :set", inputs);
}

/** Adds inputs (from another part of a split event) to a waiting derivation, pending until they succeed. */
export async function addInputs(drvPath: string, inputs: readonly string[]): Promise<DerivationItem | undefined> {
  if (inputs.length === 0) return getDerivation(drvPath);
  return updateWhileWaiting(drvPath, "ADD inputDrvs :set, pendingInputs :set", inputs);
}

/** An update of string sets (`:set`) that applies only while the derivation waits; the item after, or undefined. */
async function updateWhileWaiting(drvPath: string, expression: string, set: readonly string[]): Promise<DerivationItem | undefined> {
  const result = await unlessConditionFails(
    dynamo().send(
      new UpdateCommand({
        TableName: tableName("Derivations"),
        Key: { drvPath },
        UpdateExpression: expression,
        ConditionExpression: "#status = :waiting",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":set": new Set(set), ":waiting": "waiting" },
        ReturnValues: "ALL_NEW",
      }),
    ),
  );
  return result?.Attributes as DerivationItem | undefined;
}
