import type { z } from "zod";
import type { IndexName, TableName } from "../platform/resource-specs.ts";
import type { Query, Table } from "./table.ts";

/** A query position: the key to go on after (DynamoDB's ExclusiveStartKey). */
export type Position = Record<string, string | number>;

/** One item of a walk, with the position after it. */
export interface Walked<T> {
  item: T;
  position: Position;
}

/** A query's items one by one, from `startKey` on, each with the position to go on from after it. */
export async function* walkQuery<T extends TableName, S extends z.ZodType<Record<string, unknown>>>(
  table: Table<T, S>,
  input: Query<T> & { IndexName: IndexName<T> },
  startKey?: Position,
): AsyncGenerator<Walked<z.infer<S>>> {
  for await (const page of table.pages(input, table.schema, { pageSize: 100, ...(startKey ? { startKey } : {}) })) {
    for (const item of page.items) yield { item, position: table.positionOf(item, input.IndexName) };
  }
}
