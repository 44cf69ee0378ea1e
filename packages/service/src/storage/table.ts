/**
 * Typed access to one DynamoDB table: every item read is parsed with the table's zod schema
 * (a malformed one throws a StoredItemError naming the table and key), every query and scan
 * follows its pages with the SDK's paginators, and index names are checked against the
 * table's declaration in platform/resource-specs.ts.
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  paginateQuery,
  paginateScan,
  type QueryCommandInput,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import type { z } from "zod";
import { dynamo } from "../platform/aws-clients.ts";
import { tableName } from "../platform/linked-resources.ts";
import { tables, type IndexName, type TableName } from "../platform/resource-specs.ts";
import { batchDelete, batchGet, batchPut, unlessConditionFails } from "./dynamo-batch.ts";

/** A stored item that does not have its table's shape: found where it is read, not deep in a flow. */
export class StoredItemError extends Error {
  override name = "StoredItemError";
  constructor(
    readonly table: TableName,
    readonly key: Record<string, unknown>,
    issues: string,
  ) {
    super(`${table} item ${JSON.stringify(key)} is malformed: ${issues}`);
  }
}

/** A condition on a write, with its own placeholders. */
export interface Condition {
  expression: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

export type Query<T extends TableName> = Omit<QueryCommandInput, "TableName" | "IndexName" | "ExclusiveStartKey"> & {
  IndexName?: IndexName<T>;
};
export interface PageOptions {
  /** Items per request (DynamoDB's `Limit`). */
  pageSize?: number;
  /** Where to start: the key of the last item of an earlier page. */
  startKey?: Record<string, unknown>;
}
export type Update = Omit<UpdateCommandInput, "TableName" | "Key" | "ReturnValues">;

export interface Table<T extends TableName, S extends z.ZodType<Record<string, unknown>>> {
  readonly table: T;
  readonly schema: S;
  /** The item's shape, or a StoredItemError naming the table and key. */
  parse<P extends z.ZodType = S>(raw: unknown, shape?: P): z.infer<P>;
  /** One item by key, read consistently. */
  get(key: Record<string, unknown>): Promise<z.infer<S> | undefined>;
  /** Writes an item; false if `condition` failed (nothing changed). */
  put(item: z.input<S>, condition?: Condition): Promise<boolean>;
  /** Applies an update; false if its condition failed (nothing changed). */
  update(key: Record<string, unknown>, update: Update): Promise<boolean>;
  /**
   * Applies an update and returns the item before or after it (or, with `UPDATED_OLD` or
   * `UPDATED_NEW`, the updated attributes as they were or are: pass their `shape`); undefined if
   * its condition failed.
   */
  updateReturning<P extends z.ZodType = S>(
    key: Record<string, unknown>,
    update: Update,
    returning: "ALL_NEW" | "ALL_OLD" | "UPDATED_OLD" | "UPDATED_NEW",
    shape?: P,
  ): Promise<z.infer<P> | undefined>;
  /** Writes an item, replacing any with its key; returns the one replaced (`shape` for a part of it). */
  putReplacing<P extends z.ZodType = S>(item: z.input<S>, shape?: P): Promise<z.infer<P> | undefined>;
  /** Deletes an item; false if `condition` failed. */
  delete(key: Record<string, unknown>, condition?: Condition): Promise<boolean>;
  /** Deletes an item and returns it as it was; undefined if `condition` failed (or there was none). */
  deleteReturning(key: Record<string, unknown>, condition?: Condition): Promise<z.infer<S> | undefined>;
  /** Every item a query matches, page after page (`shape` for projections). */
  query<P extends z.ZodType = S>(input: Query<T>, shape?: P): Promise<z.infer<P>[]>;
  /** The query's pages as they come, for readers that stop early; `more` when another page follows. */
  pages<P extends z.ZodType = S>(input: Query<T>, shape?: P, options?: PageOptions): AsyncGenerator<{ items: z.infer<P>[]; more: boolean }>;
  /** Only the first page of a query (with its `Limit`): for "is there one" and "the newest few". */
  firstPage<P extends z.ZodType = S>(input: Query<T>, shape?: P): Promise<z.infer<P>[]>;
  /** How many items a query matches (no item data is read). */
  count(input: Query<T>): Promise<number>;
  /** Every item of a (small) table: only for tables bounded by the number of agents, tokens or queues. */
  scan(): Promise<z.infer<S>[]>;
  /** Items by key, consistently, in pages of 100 (missing ones are left out). */
  batchGet(keys: Record<string, unknown>[]): Promise<z.infer<S>[]>;
  /** Puts in pages of 25 (puts are idempotent here). */
  batchPut(items: readonly z.input<S>[]): Promise<void>;
  /** The key a query of `index` (or of the table) goes on after, once it has read `item`: its ExclusiveStartKey. */
  positionOf(item: Record<string, unknown>, index?: IndexName<T>): Record<string, string | number>;
  /** Deletes by key in pages of 25 (deleting twice is harmless). */
  batchDelete(keys: readonly Record<string, unknown>[]): Promise<void>;
}

const conditionInput = (condition?: Condition) =>
  condition
    ? {
        ConditionExpression: condition.expression,
        ...(condition.names ? { ExpressionAttributeNames: condition.names } : {}),
        ...(condition.values ? { ExpressionAttributeValues: condition.values } : {}),
      }
    : {};

export function defineTable<T extends TableName, S extends z.ZodType<Record<string, unknown>>>(table: T, schema: S): Table<T, S> {
  const { hashKey, rangeKey } = tables[table].primaryIndex as { hashKey: string; rangeKey?: string };
  const keyOf = (raw: unknown): Record<string, unknown> => {
    if (typeof raw !== "object" || raw === null) return {};
    const item = raw as Record<string, unknown>;
    return Object.fromEntries([hashKey, rangeKey].flatMap((k) => (k && k in item ? [[k, item[k]]] : [])));
  };
  const parse = <P extends z.ZodType = S>(raw: unknown, shape?: P): z.infer<P> => {
    const parsed = (shape ?? schema).safeParse(raw);
    if (parsed.success) return parsed.data as z.infer<P>;
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(item)"}: ${i.message}`).join("; ");
    throw new StoredItemError(table, keyOf(raw), issues);
  };
  const name = () => tableName(table);

  async function* pages<P extends z.ZodType = S>(input: Query<T>, shape?: P, options: PageOptions = {}) {
    const config = { client: dynamo(), ...(options.pageSize ? { pageSize: options.pageSize } : {}), ...(options.startKey ? { startingToken: options.startKey } : {}) };
    const paginator = paginateQuery(config, { ...input, TableName: name() });
    for await (const page of paginator) {
      yield { items: (page.Items ?? []).map((item) => parse(item, shape)), more: page.LastEvaluatedKey !== undefined };
    }
  }

  return {
    table,
    schema,
    parse,
    async get(key) {
      const { Item } = await dynamo().send(new GetCommand({ TableName: name(), Key: key, ConsistentRead: true }));
      return Item ? parse(Item) : undefined;
    },
    async put(item, condition) {
      const put = dynamo().send(new PutCommand({ TableName: name(), Item: item as Record<string, unknown>, ...conditionInput(condition) }));
      return (await unlessConditionFails(put)) !== undefined;
    },
    async update(key, update) {
      return (await unlessConditionFails(dynamo().send(new UpdateCommand({ ...update, TableName: name(), Key: key })))) !== undefined;
    },
    async updateReturning(key, update, returning, shape) {
      const result = await unlessConditionFails(
        dynamo().send(new UpdateCommand({ ...update, TableName: name(), Key: key, ReturnValues: returning })),
      );
      if (!result) return undefined;
      // UPDATED_OLD of attributes that did not exist yet returns no Attributes at all.
      if (!result.Attributes) return returning === "UPDATED_OLD" ? parse({}, shape) : undefined;
      return parse(result.Attributes, shape);
    },
    async putReplacing(item, shape) {
      const { Attributes } = await dynamo().send(new PutCommand({ TableName: name(), Item: item as Record<string, unknown>, ReturnValues: "ALL_OLD" }));
      return Attributes ? parse(Attributes, shape) : undefined;
    },
    async delete(key, condition) {
      const deleted = dynamo().send(new DeleteCommand({ TableName: name(), Key: key, ...conditionInput(condition) }));
      return (await unlessConditionFails(deleted)) !== undefined;
    },
    async deleteReturning(key, condition) {
      const deleted = await unlessConditionFails(
        dynamo().send(new DeleteCommand({ TableName: name(), Key: key, ReturnValues: "ALL_OLD", ...conditionInput(condition) })),
      );
      return deleted?.Attributes ? parse(deleted.Attributes) : undefined;
    },
    async query(input, shape) {
      const items = [];
      for await (const page of pages(input, shape)) items.push(...page.items);
      return items;
    },
    pages,
    async firstPage(input, shape) {
      const { Items = [] } = await dynamo().send(new QueryCommand({ ...input, TableName: name() }));
      return Items.map((item) => parse(item, shape));
    },
    async count(input) {
      let count = 0;
      for await (const page of paginateQuery({ client: dynamo() }, { ...input, TableName: name(), Select: "COUNT" })) count += page.Count ?? 0;
      return count;
    },
    async scan() {
      const items = [];
      for await (const page of paginateScan({ client: dynamo() }, { TableName: name(), ConsistentRead: true })) {
        items.push(...(page.Items ?? []).map((item) => parse(item)));
      }
      return items;
    },
    async batchGet(keys) {
      return (await batchGet(name(), keys)).map((item) => parse(item));
    },
    async batchPut(items) {
      await batchPut(name(), items as readonly unknown[] as readonly object[]);
    },
    positionOf(item, index) {
      const indexes = (tables[table] as { globalIndexes?: Record<string, { hashKey: string; rangeKey?: string }> }).globalIndexes ?? {};
      const indexKey = index ? indexes[index] : undefined;
      const names = [hashKey, rangeKey, indexKey?.hashKey, indexKey?.rangeKey].filter((n): n is string => n !== undefined);
      return Object.fromEntries(names.map((n) => [n, item[n] as string | number]));
    },
    async batchDelete(keys) {
      await batchDelete(name(), keys);
    },
  };
}
