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

/** Separates a shard's name from an attribute's in a merged position (neither holds it). */
const SEP = "\u0000";

/**
 * The walks of several shards of one index, merged in the order `orderOf` gives (each shard's
 * walk is in that order), so a sharded index is read oldest first like an unsharded one. Each
 * item's position holds every shard's — where each one goes on from — so a walk saved part-way
 * goes on in every shard; a position of another shape starts every shard from its beginning.
 */
export async function* walkShards<T>(
  shards: readonly string[],
  walk: (shard: string, start?: Position) => AsyncGenerator<Walked<T>>,
  orderOf: (item: T) => string,
  start?: Position,
): AsyncGenerator<Walked<T>> {
  const positions = new Map<string, Position>();
  for (const [key, value] of Object.entries(start ?? {})) {
    const at = key.indexOf(SEP);
    if (at < 0) continue;
    const shard = key.slice(0, at);
    positions.set(shard, { ...positions.get(shard), [key.slice(at + 1)]: value });
  }
  const walks = shards.map((shard) => walk(shard, positions.get(shard)));
  const heads = await Promise.all(walks.map((w) => w.next()));
  for (;;) {
    let next = -1;
    for (const [i, head] of heads.entries()) {
      if (head.done) continue;
      const best = heads[next];
      if (next < 0 || (best && !best.done && orderOf(head.value.item) < orderOf(best.value.item))) next = i;
    }
    if (next < 0) return;
    const head = heads[next]!;
    if (head.done) return;
    positions.set(shards[next]!, head.value.position);
    const merged: Position = {};
    for (const [shard, position] of positions) for (const [key, value] of Object.entries(position)) merged[`${shard}${SEP}${key}`] = value;
    yield { item: head.value.item, position: merged };
    heads[next] = await walks[next]!.next();
  }
}

/** One shard's first page, and whether the shard holds more after it. */
export interface ShardPage<T> {
  items: T[];
  more: boolean;
}

/**
 * The first `limit` items of a sharded index in its order: each shard's first page of at most
 * `limit`, merged (what one page of the unsharded index would have held); `more` when a shard
 * had more or the merge was cut at the limit.
 */
export async function firstPageOfShards<T>(
  shards: readonly string[],
  limit: number,
  orderOf: (item: T) => string,
  page: (shard: string, limit: number) => Promise<ShardPage<T>>,
): Promise<ShardPage<T>> {
  const pages = await Promise.all(shards.map((shard) => page(shard, limit)));
  const merged = pages.flatMap((p) => p.items).sort((a, b) => (orderOf(a) < orderOf(b) ? -1 : orderOf(a) > orderOf(b) ? 1 : 0));
  return { items: merged.slice(0, limit), more: merged.length > limit || pages.some((p) => p.more) };
}

/** `firstPageOfShards` for readers that take the first page and never go on. */
export async function firstOfShards<T>(
  shards: readonly string[],
  limit: number,
  orderOf: (item: T) => string,
  page: (shard: string, limit: number) => Promise<T[]>,
): Promise<T[]> {
  return (await firstPageOfShards(shards, limit, orderOf, async (shard, max) => ({ items: await page(shard, max), more: false }))).items;
}
