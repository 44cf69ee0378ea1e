import assert from "node:assert/strict";
import { test } from "node:test";
import { firstOfShards, firstPageOfShards } from "../src/storage/index-walk.ts";
import { INDEX_SHARDS, indexShard, indexShards, SHARD } from "../src/storage/keys.ts";

test("an index's items spread over its shards by key, and its readers ask every shard and the unnumbered one", () => {
  const used = new Set(Array.from({ length: 200 }, (_, i) => indexShard(SHARD.activeJob, `j${i}`)));
  assert.equal(used.size, INDEX_SHARDS, "200 keys land in every shard");
  assert.equal(indexShard(SHARD.activeJob, "j7"), indexShard(SHARD.activeJob, "j7"), "a key's shard never changes");
  assert.deepEqual(indexShards(SHARD.reportDue), ["r", ...Array.from({ length: INDEX_SHARDS }, (_, i) => `r${i}`)]);
  for (const shard of used) assert.ok(indexShards(SHARD.activeJob).includes(shard));
});

test("the first page of a sharded index is every shard's first page merged in index order, cut at the limit", async () => {
  const shards: Record<string, string[]> = { r: ["03", "09"], r0: ["01", "05", "08"], r1: [], r2: ["02", "04"], r3: ["06", "07"] };
  const asked: Array<[string, number]> = [];
  const first = await firstOfShards(Object.keys(shards), 5, (due: string) => due, async (shard, limit) => {
    asked.push([shard, limit]);
    return shards[shard]!.slice(0, limit);
  });
  assert.deepEqual(first, ["01", "02", "03", "04", "05"]);
  assert.deepEqual(asked.map(([shard]) => shard).sort(), Object.keys(shards).sort(), "every shard asked");
  assert.ok(asked.every(([, limit]) => limit === 5), "each for at most the limit");
});

test("a merged first page says more follows when a shard had more or the merge was cut at the limit, and only then", async () => {
  const page = (shards: Record<string, { items: string[]; more: boolean }>) => (shard: string) => Promise.resolve(shards[shard]!);
  const order = (due: string) => due;
  const cut = await firstPageOfShards(["a", "b"], 2, order, page({ a: { items: ["1", "3"], more: false }, b: { items: ["2"], more: false } }));
  assert.deepEqual(cut, { items: ["1", "2"], more: true }, "three items for a limit of two");
  const fuller = await firstPageOfShards(["a", "b"], 2, order, page({ a: { items: ["1"], more: true }, b: { items: [], more: false } }));
  assert.deepEqual(fuller, { items: ["1"], more: true }, "a shard's page left some behind");
  const end = await firstPageOfShards(["a", "b"], 3, order, page({ a: { items: ["1"], more: false }, b: { items: ["2"], more: false } }));
  assert.deepEqual(end, { items: ["1", "2"], more: false });
});
