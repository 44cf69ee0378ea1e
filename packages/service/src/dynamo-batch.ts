import { BatchGetCommand, BatchWriteCommand, QueryCommand, ScanCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import { dynamo } from "./aws-clients.ts";

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** BatchGetItem in pages of 100 keys, retrying what DynamoDB leaves unprocessed. */
export async function batchGet<T>(table: string, keys: Record<string, unknown>[]): Promise<T[]> {
  const found: T[] = [];
  for (const page of chunks(keys, 100)) {
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined = {
      [table]: { Keys: page, ConsistentRead: true },
    };
    for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
      const result = await dynamo().send(new BatchGetCommand({ RequestItems: request }));
      found.push(...((result.Responses?.[table] ?? []) as T[]));
      request = result.UnprocessedKeys as typeof request;
    }
  }
  return found;
}

/** BatchWriteItem (puts) in pages of 25, retrying unprocessed items. Puts are idempotent here. */
export async function batchPut(table: string, items: readonly object[]): Promise<void> {
  for (const page of chunks(items, 25)) {
    let request: Record<string, unknown[]> | undefined = { [table]: page.map((Item) => ({ PutRequest: { Item } })) };
    for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
      const result = await dynamo().send(new BatchWriteCommand({ RequestItems: request as never }));
      request = result.UnprocessedItems as typeof request;
    }
  }
}

/** Every item a query matches, following pages. */
export async function queryAll<T>(input: QueryCommandInput): Promise<T[]> {
  const items: T[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(new QueryCommand({ ...input, ExclusiveStartKey }));
    items.push(...((page.Items ?? []) as T[]));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

export const isConditionFailure = (error: unknown) =>
  error instanceof Error && error.name === "ConditionalCheckFailedException";

/** Every item of a (small) table, following pages: only for tables bounded by the number of agents or tokens. */
export async function scanAll<T>(table: string): Promise<T[]> {
  const items: T[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(new ScanCommand({ TableName: table, ExclusiveStartKey, ConsistentRead: true }));
    items.push(...((page.Items ?? []) as T[]));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/** Items of a table's `byLastSeen` index (hash `shard`, range `lastSeen`) not seen since `before`. */
export function quietSince<T>(table: string, shard: string, before: Date): Promise<T[]> {
  return queryAll<T>({
    TableName: table,
    IndexName: "byLastSeen",
    KeyConditionExpression: "#shard = :shard AND lastSeen < :before",
    ExpressionAttributeNames: { "#shard": "shard" },
    ExpressionAttributeValues: { ":shard": shard, ":before": before.toISOString() },
  });
}

/** Awaits a conditional write: its condition failing is an answer (undefined), anything else an error. */
export async function unlessConditionFails<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}
