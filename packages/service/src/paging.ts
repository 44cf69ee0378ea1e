/**
 * Paging for the JSON API: `limit` from the query string, and cursors — the DynamoDB key of a
 * page's last item as base64url JSON. Opaque to clients; checked here so a cursor from another
 * listing (or a hand-edited one) is a 400, never a DynamoDB error.
 */
import { QueryCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import { dynamo } from "./aws-clients.ts";
import { badRequest } from "./errors.ts";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined || raw === "") return DEFAULT_PAGE_SIZE;
  const limit = Number(raw);
  if (!/^\d+$/.test(raw) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw badRequest(`limit must be a whole number from 1 to ${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`);
  }
  return limit;
}

type Key = Record<string, string | number>;

export function encodeCursor(key: Key): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

/**
 * The key a cursor holds: exactly `attributes`, each a string or number, and `fixed` (the
 * partition the query reads) unchanged.
 */
export function decodeCursor(cursor: string | undefined, attributes: readonly string[], fixed: Key): Key | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  const refuse = () => badRequest("cursor is not one this listing returned — drop it to start from the first page");
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw refuse();
  }
  if (typeof key !== "object" || key === null || Array.isArray(key)) throw refuse();
  const entries = Object.entries(key);
  const wellFormed =
    entries.length === attributes.length &&
    entries.every(([name, value]) => attributes.includes(name) && (typeof value === "string" || typeof value === "number")) &&
    Object.entries(fixed).every(([name, value]) => (key as Key)[name] === value);
  if (!wellFormed) throw refuse();
  return key as Key;
}

/**
 * One page of a query: up to `limit` items, and a cursor only when more follow (reads one item
 * ahead, so the last page never comes with a cursor to an empty one).
 */
export async function queryPage<T extends Record<string, unknown>>(
  input: QueryCommandInput,
  keyAttributes: readonly string[],
  limit: number,
  start: Key | undefined,
): Promise<{ items: T[]; cursor?: string }> {
  const items: T[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined = start;
  // DynamoDB may stop early at 1 MB of data; keep reading until the page is full or the query ends.
  do {
    const page = await dynamo().send(new QueryCommand({ ...input, ExclusiveStartKey, Limit: limit + 1 - items.length }));
    items.push(...((page.Items ?? []) as T[]));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey && items.length <= limit);
  if (items.length <= limit) return { items };
  const page = items.slice(0, limit);
  const last = page[limit - 1]!;
  return { items: page, cursor: encodeCursor(Object.fromEntries(keyAttributes.map((a) => [a, last[a] as string | number]))) };
}

/** How many items a query matches, counted page by page (no item data is read). */
export async function countQuery(input: QueryCommandInput): Promise<number> {
  let count = 0;
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(new QueryCommand({ ...input, Select: "COUNT", ExclusiveStartKey }));
    count += page.Count ?? 0;
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return count;
}
