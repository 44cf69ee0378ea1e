/**
 * Paging for the JSON API: `limit` from the query string, and cursors — the DynamoDB key of a
 * page's last item as base64url JSON. Opaque to clients; checked here so a cursor from another
 * listing (or a hand-edited one) is a 400, never a DynamoDB error.
 */
import type { TableName } from "../platform/resource-specs.ts";
import { badRequest } from "../platform/errors.ts";
import type { Query, Table } from "../storage/table.ts";
import type { z } from "zod";

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
export async function queryPage<T extends TableName, S extends z.ZodType<Record<string, unknown>>, P extends z.ZodType<Record<string, unknown>> = S>(
  table: Table<T, S>,
  input: Query<T>,
  keyAttributes: readonly string[],
  limit: number,
  start: Key | undefined,
  shape: P = table.schema as unknown as P,
): Promise<{ items: z.infer<P>[]; cursor?: string }> {
  const items: z.infer<P>[] = [];
  // DynamoDB may stop early at 1 MB of data; keep reading until the page is full or the query ends.
  for await (const page of table.pages(input, shape, { pageSize: limit + 1, ...(start ? { startKey: start } : {}) })) {
    items.push(...page.items);
    if (items.length > limit) break;
  }
  if (items.length <= limit) return { items };
  const page = items.slice(0, limit);
  const last = page[limit - 1]!;
  return { items: page, cursor: encodeCursor(Object.fromEntries(keyAttributes.map((a) => [a, last[a] as string | number]))) };
}
