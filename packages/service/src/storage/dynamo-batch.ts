import { BatchGetCommand, BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { dynamo } from "../platform/aws-clients.ts";

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Batch reads and writes retry what DynamoDB leaves unprocessed with a back-off, as AWS asks
// (the SDK's paginatedBatchGet retries at once, which only adds to the throttling).

/** BatchGetItem in pages of 100 keys, read consistently; raw items (storage/table.ts parses them). */
export async function batchGet(table: string, keys: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const found: Record<string, unknown>[] = [];
  for (const page of chunks(keys, 100)) {
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined = {
      [table]: { Keys: page, ConsistentRead: true },
    };
    for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
      const result = await dynamo().send(new BatchGetCommand({ RequestItems: request }));
      found.push(...(result.Responses?.[table] ?? []));
      request = result.UnprocessedKeys as typeof request;
    }
  }
  return found;
}

/** BatchWriteItem (puts) in pages of 25, retrying unprocessed items. */
export async function batchPut(table: string, items: readonly object[]): Promise<void> {
  await batchWrite(table, items.map((Item) => ({ PutRequest: { Item } })));
}

/** BatchWriteItem (deletes by key) in pages of 25, retrying unprocessed items. */
export async function batchDelete(table: string, keys: readonly Record<string, unknown>[]): Promise<void> {
  await batchWrite(table, keys.map((Key) => ({ DeleteRequest: { Key } })));
}

async function batchWrite(table: string, requests: readonly object[]): Promise<void> {
  for (const page of chunks(requests, 25)) {
    let request: Record<string, unknown[]> | undefined = { [table]: page };
    for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
      const result = await dynamo().send(new BatchWriteCommand({ RequestItems: request as never }));
      request = result.UnprocessedItems as typeof request;
    }
  }
}

export const isConditionFailure = (error: unknown) =>
  error instanceof Error && error.name === "ConditionalCheckFailedException";

/** Awaits a conditional write: its condition failing is an answer (undefined), anything else an error. */
export async function unlessConditionFails<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}
