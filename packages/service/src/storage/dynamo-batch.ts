import { BatchGetCommand, BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import pMap from "p-map";
import { dynamo } from "../platform/aws-clients.ts";

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Batch reads and writes retry what DynamoDB leaves unprocessed with a back-off, as AWS asks
// (the SDK's paginatedBatchGet retries at once, which only adds to the throttling).

/** Pages of one batch read or write in flight at once: a big batch is not one page after the other. */
const PAGES_AT_ONCE = 8;

/**
 * Single writes (a conditional put or move each) one invocation keeps in flight when it has many
 * to make: an evaluation batch's, a settle's page of dependents, a cancellation's page.
 */
export const WRITES_AT_ONCE = 16;

/** BatchGetItem in pages of 100 keys (several at once), read consistently; raw items (storage/table.ts parses them). */
export async function batchGet(table: string, keys: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const pages = await pMap(chunks(keys, 100), async (page) => {
    const found: Record<string, unknown>[] = [];
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined = {
      [table]: { Keys: page, ConsistentRead: true },
    };
    for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
      const result = await dynamo().send(new BatchGetCommand({ RequestItems: request }));
      found.push(...(result.Responses?.[table] ?? []));
      request = result.UnprocessedKeys as typeof request;
    }
    return found;
  }, { concurrency: PAGES_AT_ONCE });
  return pages.flat();
}

/** BatchWriteItem (puts) in pages of 25, retrying unprocessed items. */
export async function batchPut(table: string, items: readonly object[]): Promise<void> {
  await batchWrite(items.map((Item) => ({ table, request: { PutRequest: { Item } } })));
}

/** BatchWriteItem (deletes by key) in pages of 25, retrying unprocessed items. */
export async function batchDelete(table: string, keys: readonly Record<string, unknown>[]): Promise<void> {
  await batchWrite(keys.map((Key) => ({ table, request: { DeleteRequest: { Key } } })));
}

/** Puts into several tables, 25 to a request whatever their tables (a key must not come twice). */
export async function batchPutMany(puts: readonly { table: string; item: object }[]): Promise<void> {
  await batchWrite(puts.map(({ table, item }) => ({ table, request: { PutRequest: { Item: item } } })));
}

/** BatchWriteItem in pages of 25 (several at once), each retrying what DynamoDB left unprocessed with a back-off. */
async function batchWrite(writes: readonly { table: string; request: object }[]): Promise<void> {
  await pMap(chunks(writes, 25), async (page) => {
    let request: Record<string, unknown[]> | undefined = {};
    for (const { table, request: write } of page) (request[table] ??= []).push(write);
    for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
      if (attempt > 0) await pause(Math.min(1000, 25 * 2 ** attempt));
      const result = await dynamo().send(new BatchWriteCommand({ RequestItems: request as never }));
      request = result.UnprocessedItems as typeof request;
    }
  }, { concurrency: PAGES_AT_ONCE });
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
