import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { EDGE_GROUP_BYTES, EDGE_GROUP_DEPENDENTS, edgePage, groupDependents, groupKey, parseEdgePosition, type EdgeRowRead } from "../src/edge-groups.ts";

const drv = (name: string, pad = 0) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${"x".repeat(pad)}${name}.drv`;
const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 24);

describe("groupDependents: one row per input with the batch's dependents of it", () => {
  it("groups each input's dependents, sorted and once each", () => {
    const groups = groupDependents([
      { inputDrv: "i1", dependentDrv: "c" },
      { inputDrv: "i2", dependentDrv: "a" },
      { inputDrv: "i1", dependentDrv: "a" },
      { inputDrv: "i1", dependentDrv: "c" },
    ]);
    assert.deepEqual(groups, [
      { inputDrv: "i1", dependents: ["a", "c"] },
      { inputDrv: "i2", dependents: ["a"] },
    ]);
  });

  it(`cuts a group at ${EDGE_GROUP_DEPENDENTS} dependents and at ${EDGE_GROUP_BYTES} bytes of paths`, () => {
    const many = Array.from({ length: 2 * EDGE_GROUP_DEPENDENTS + 5 }, (_, i) => ({ inputDrv: "hub", dependentDrv: drv(`d${String(i).padStart(4, "0")}`) }));
    assert.deepEqual(groupDependents(many).map((g) => g.dependents.length), [EDGE_GROUP_DEPENDENTS, EDGE_GROUP_DEPENDENTS, 5]);
    const long = Array.from({ length: 40 }, (_, i) => ({ inputDrv: "hub", dependentDrv: drv(`l${String(i).padStart(2, "0")}`, 1000) }));
    const groups = groupDependents(long);
    assert.ok(groups.length > 1, "40 paths of about 1 KB: more than one row");
    for (const g of groups) assert.ok(g.dependents.reduce((n, d) => n + d.length, 0) <= EDGE_GROUP_BYTES, `${g.dependents.length} paths within the bound`);
    assert.deepEqual(groups.flatMap((g) => g.dependents), long.map((e) => e.dependentDrv), "every dependent once, in order");
  });

  it("puts a path longer than the byte bound in a row of its own", () => {
    const huge = "/" + "h".repeat(EDGE_GROUP_BYTES + 10) + ".drv";
    assert.deepEqual(groupDependents([{ inputDrv: "i", dependentDrv: "/a.drv" }, { inputDrv: "i", dependentDrv: huge }]).map((g) => g.dependents), [["/a.drv"], [huge]]);
  });
});

describe("groupKey: a row's sort key", () => {
  it("is the dependent itself for one", () => assert.equal(groupKey([drv("a")], digest), drv("a")));
  it("is the first dependent, a space and a digest for a group: never a .drv path, the same for the same group, another for another", () => {
    const key = groupKey([drv("a"), drv("b")], digest);
    assert.ok(key.startsWith(`${drv("a")} `) && !key.endsWith(".drv"));
    assert.equal(groupKey([drv("a"), drv("b")], digest), key);
    assert.notEqual(groupKey([drv("a"), drv("c")], digest), key);
  });
});

describe("edgePage: an input's dependents a page at a time, across rows of one or many", () => {
  /** A table of rows sorted by key, and the query dependentPage makes of it (Limit rows, from a position). */
  const table = (groups: string[][]): EdgeRowRead[] =>
    groups
      .map((dependents): EdgeRowRead => (dependents.length === 1 ? { dependentDrv: dependents[0]! } : { dependentDrv: groupKey(dependents, digest), dependents }))
      .sort((a, b) => (a.dependentDrv < b.dependentDrv ? -1 : a.dependentDrv > b.dependentDrv ? 1 : 0));
  const query = (rows: EdgeRowRead[], after: string | undefined, limit: number) => {
    const start = parseEdgePosition(after);
    const matching = rows.filter((r) => !start || (start.told === undefined ? r.dependentDrv > start.key : r.dependentDrv >= start.key));
    return { rows: matching.slice(0, limit), more: matching.length > limit, start };
  };
  const walk = (rows: EdgeRowRead[], size: number) => {
    const pages: string[][] = [];
    let after: string | undefined;
    for (let n = 0; n < 10_000; n++) {
      const read = query(rows, after, size);
      const page = edgePage(read.rows, read.start, size, read.more);
      pages.push(page.dependents);
      if (page.next.type === "done") return pages;
      after = page.next.after;
    }
    throw new Error("the pages never ended");
  };
  const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => drv(`${prefix}${String(i).padStart(3, "0")}`));
  const rows = table([names("a", 7), [drv("b000")], names("c", 3), [drv("d000")], names("e", 12), names("f", 1)]);
  const all = rows.flatMap((r) => r.dependents ?? [r.dependentDrv]);

  for (const size of [1, 2, 3, 5, 7, 24, 100]) {
    it(`tells every dependent once, in pages of exactly ${size} but the last`, () => {
      const pages = walk(rows, size);
      assert.deepEqual(pages.flat(), all);
      for (const page of pages.slice(0, -1)) assert.equal(page.length, size);
      assert.ok(pages.at(-1)!.length <= size);
    });
  }

  it("goes on inside a row from the count its position names", () => {
    const page = edgePage(rows.slice(0, 2), { key: rows[0]!.dependentDrv }, 3, true);
    assert.deepEqual(page, { dependents: all.slice(0, 3), next: { type: "next", after: `${rows[0]!.dependentDrv}\t3` } });
    const read = query(rows, `${rows[0]!.dependentDrv}\t3`, 3);
    assert.deepEqual(edgePage(read.rows, read.start, 3, read.more).dependents, all.slice(3, 6));
  });

  it("reads a position of one dependent (a row of its own, or a settle from before groups) as after that row", () => {
    assert.deepEqual(parseEdgePosition(drv("b000")), { key: drv("b000") });
    const read = query(rows, drv("b000"), 100);
    assert.deepEqual(edgePage(read.rows, read.start, 100, read.more).dependents, all.slice(all.indexOf(drv("b000")) + 1));
  });

  it("is not the last page while the query left rows out (DynamoDB's 1 MB), even when short", () => {
    assert.deepEqual(edgePage([{ dependentDrv: drv("a") }], undefined, 10, true).next, { type: "next", after: drv("a") });
    assert.deepEqual(edgePage([{ dependentDrv: drv("a") }], undefined, 10, false).next, { type: "done" });
  });

  it("ends at a full page that took the last row, with none left out", () => {
    assert.deepEqual(edgePage(table([names("a", 4)]), undefined, 4, false), { dependents: names("a", 4), next: { type: "done" } });
  });
});
