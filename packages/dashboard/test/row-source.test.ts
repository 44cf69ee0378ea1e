import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { inRange, NIX_BASE32, type HashRange } from "../src/list/hash-ranges.ts";
import { CursorSource, HashRangeSource, type Page } from "../src/list/row-source.ts";

const randomHash = () => Array.from(randomBytes(32), (b) => NIX_BASE32[b % 32]).join("");
const rows = (n: number) => Array.from({ length: n }, randomHash).sort();
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

/** The API's derivation listing over `all` (sorted): a hash range, a cursor, a limit — as docs/dashboard-api.md says. */
function fakeApi(all: string[], options: { limit?: number; ignoreRange?: boolean } = {}) {
  const calls: Array<{ range: HashRange; cursor?: string }> = [];
  const fetch = async (range: HashRange, cursor: string | undefined): Promise<Page<string>> => {
    calls.push({ range, cursor });
    const limit = options.limit ?? 200;
    const matching = options.ignoreRange ? all : all.filter((h) => inRange(h, range));
    const start = cursor === undefined ? 0 : matching.indexOf(cursor) + 1;
    const items = matching.slice(start, start + limit);
    return { items, cursor: start + limit < matching.length ? items[items.length - 1] : undefined };
  };
  return { fetch, calls };
}

async function wantAll(source: HashRangeSource<string>) {
  for (let round = 0; round < 200; round++) {
    const before = source.loadedRows();
    for (let start = 0; start < source.count(); start += 500) {
      source.want(start, start + 500);
      await settle();
    }
    if (source.loadedRows() === before && round > 0) return;
  }
}

describe("HashRangeSource", () => {
  it("opens any part of a long list with one request for the rows in view", async () => {
    const all = rows(10_000);
    const api = fakeApi(all);
    const source = new HashRangeSource(all.length, api.fetch, (h) => h, 100);
    assert.equal(source.count(), 10_000);

    source.want(5_000, 5_030);
    await settle();
    assert.ok(api.calls.length <= 2, `${api.calls.length} requests`);
    const shown = Array.from({ length: 30 }, (_, i) => source.row(5_000 + i));
    assert.ok(shown.every((h) => h !== undefined), "the rows in view are loaded");
    // In order, and where they belong give or take the spread of uniform hashes.
    assert.deepEqual([...shown].sort(), shown);
    const truePosition = all.indexOf(shown[0]!);
    assert.ok(Math.abs(truePosition - 5_000) < 400, `row 5000 shows the true row ${truePosition}`);
  });

  it("shows exactly the sorted list once every bucket is loaded", async () => {
    const all = rows(3_000);
    const source = new HashRangeSource(all.length, fakeApi(all, { limit: 60 }).fetch, (h) => h, 100);
    await wantAll(source);
    assert.equal(source.count(), all.length);
    assert.deepEqual(Array.from({ length: all.length }, (_, i) => source.row(i)), all);
    for (const i of [0, 1234, 2999]) assert.equal(source.indexOfKey(source.keyAt(i)!), i);
  });

  it("reads a bucket longer than one page until the rows in view are all there", async () => {
    const all = rows(2_000);
    const api = fakeApi(all, { limit: 30 });
    const source = new HashRangeSource(all.length, api.fetch, (h) => h, 100);
    source.want(1_000, 1_040);
    await settle();
    assert.ok(Array.from({ length: 40 }, (_, i) => source.row(1_000 + i)).every((h) => h !== undefined));
    assert.ok(api.calls.length < 15, `${api.calls.length} requests`);
  });

  it("keeps reading an API that ignores hash ranges until the rows asked for once are there", async () => {
    const all = rows(2_000);
    const api = fakeApi(all, { ignoreRange: true, limit: 200 });
    const source = new HashRangeSource(all.length, api.fetch, (h) => h, 100);
    source.want(1_000, 1_040);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(Array.from({ length: 40 }, (_, i) => source.row(1_000 + i)), all.slice(1_000, 1_040));
  });

  it("reads in order from an API that ignores hash ranges, never showing a row twice", async () => {
    const all = rows(1_000);
    const api = fakeApi(all, { ignoreRange: true });
    const source = new HashRangeSource(all.length, api.fetch, (h) => h, 100);
    await wantAll(source);
    assert.equal(source.error(), undefined);
    assert.deepEqual(Array.from({ length: source.count() }, (_, i) => source.row(i)), all);
  });

  it("keeps loaded rows and says why when a request fails; retry goes on", async () => {
    const all = rows(500);
    const api = fakeApi(all);
    let fail = true;
    const source = new HashRangeSource(
      all.length,
      async (range, cursor, signal) => {
        if (fail && range.from !== undefined) throw new Error("HTTP 500");
        return api.fetch(range, cursor);
      },
      (h) => h,
      100,
    );
    source.want(0, 20);
    await settle();
    source.want(300, 320);
    await settle();
    assert.equal(source.error(), "HTTP 500");
    assert.ok(source.row(0) !== undefined);
    fail = false;
    source.retry();
    source.want(300, 320);
    await settle();
    assert.equal(source.error(), undefined);
    assert.ok(source.row(310) !== undefined);
  });

  it("tells its listeners when rows arrive, and stops when disposed", async () => {
    const all = rows(300);
    const source = new HashRangeSource(all.length, fakeApi(all).fetch, (h) => h, 100);
    let told = 0;
    source.subscribe(() => told++);
    source.want(0, 10);
    await settle();
    assert.ok(told > 0);
    source.dispose();
    const before = told;
    source.want(250, 260);
    await settle();
    assert.equal(told, before);
  });
});

describe("CursorSource", () => {
  it("grows page by page as the end comes into view", async () => {
    const all = rows(450);
    const pages: Array<string | undefined> = [];
    const source = new CursorSource<string>(
      async (cursor) => {
        pages.push(cursor);
        const start = cursor === undefined ? 0 : all.indexOf(cursor) + 1;
        const items = all.slice(start, start + 200);
        return { items, cursor: start + 200 < all.length ? items.at(-1) : undefined };
      },
      (h) => h,
    );
    assert.equal(source.count(), 1, "one row saying it is loading");
    source.want(0, 20);
    await settle();
    assert.equal(source.count(), 201);
    source.want(0, 20);
    await settle();
    assert.equal(pages.length, 1, "nothing more while the end is far");
    source.want(180, 200);
    await settle();
    source.want(380, 400);
    await settle();
    assert.equal(source.count(), 450);
    assert.ok(source.complete());
    assert.deepEqual(Array.from({ length: 450 }, (_, i) => source.row(i)), all);
  });
});
