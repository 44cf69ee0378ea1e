import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { afterPage, DEFAULT_FAN_OUT_PAGE, fanOutKeys, fanOutPageSize, MAX_FAN_OUT_PAGE, settleContinues } from "../src/fan-out.ts";

describe("fanOutPageSize: the page size a setting asks for", () => {
  it("takes a whole number from 1 to the maximum", () => {
    assert.equal(fanOutPageSize("1"), 1);
    assert.equal(fanOutPageSize(" 250 "), 250);
    assert.equal(fanOutPageSize(String(MAX_FAN_OUT_PAGE)), MAX_FAN_OUT_PAGE);
  });
  for (const bad of [undefined, "", "0", "-5", "2.5", "ten", String(MAX_FAN_OUT_PAGE + 1), "Infinity"]) {
    it(`gives the default for ${JSON.stringify(bad)}`, () => assert.equal(fanOutPageSize(bad), DEFAULT_FAN_OUT_PAGE));
  }
});

describe("afterPage: whether a next page follows, and where it starts", () => {
  it("a short page is the last", () => assert.deepEqual(afterPage(["a", "b"], 3), { type: "done" }));
  it("an empty page is the last", () => assert.deepEqual(afterPage([], 3), { type: "done" }));
  it("a full page goes on after its last key", () => assert.deepEqual(afterPage(["a", "b", "c"], 3), { type: "next", after: "c" }));

  it("paging a sorted key list by its continuations visits every key exactly once, whatever the page size", () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `k${String(i).padStart(4, "0")}`);
    for (const size of [1, 7, 100, 999, 1000, 1001]) {
      const seen: string[] = [];
      let after = "";
      let pages = 0;
      for (;;) {
        const page = keys.filter((k) => k > after).slice(0, size);
        seen.push(...page);
        pages++;
        const next = afterPage(page, size);
        if (next.type === "done") break;
        after = next.after;
      }
      assert.deepEqual(seen, keys, `page size ${size}`);
      assert.ok(pages <= Math.floor(keys.length / size) + 1, `page size ${size}: ${pages} pages`);
    }
  });
});

describe("settleContinues: whether a settle continuation still applies", () => {
  const settled = { status: "succeeded" as const, version: 3, propagateShard: "p" };
  it("goes on while the derivation is settled at the version told and not yet propagated", () => {
    assert.equal(settleContinues(settled, { version: 3 }), true);
    assert.equal(settleContinues({ ...settled, status: "dependency-failed" }, { version: 3 }), true);
  });
  it("stops once its dependents were all told (a copy that came after the end)", () => {
    const { propagateShard: _, ...propagated } = settled;
    assert.equal(settleContinues(propagated, { version: 3 }), false);
  });
  it("stops after a rebuild (another version: its own settle tells the dependents)", () => {
    assert.equal(settleContinues({ ...settled, version: 5 }, { version: 3 }), false);
    assert.equal(settleContinues({ ...settled, status: "building" }, { version: 3 }), false);
  });
  it("stops when the derivation is gone", () => assert.equal(settleContinues(undefined, { version: 3 }), false));
});

describe("fanOutKeys: FIFO group and deduplication key of a continuation", () => {
  const settle = { type: "settle" as const, drvPath: "/nix/store/a.drv", version: 2, after: "/nix/store/m.drv" };
  const cancel = { type: "cancel" as const, jobId: "j1", after: "/nix/store/m.drv" };
  it("pages of one target share a group; each page has its own key", () => {
    assert.equal(fanOutKeys(settle).group, fanOutKeys({ ...settle, after: "/nix/store/z.drv" }).group);
    assert.notEqual(fanOutKeys(settle).dedup, fanOutKeys({ ...settle, after: "/nix/store/z.drv" }).dedup);
    assert.equal(fanOutKeys(cancel).group, fanOutKeys({ ...cancel, after: "x" }).group);
    assert.notEqual(fanOutKeys(cancel).dedup, fanOutKeys({ ...cancel, after: "x" }).dedup);
  });
  it("the same page sent twice has the same key (SQS drops the copy)", () => assert.deepEqual(fanOutKeys({ ...settle }), fanOutKeys(settle)));
  it("a rebuild's pages are new pages", () => assert.notEqual(fanOutKeys(settle).dedup, fanOutKeys({ ...settle, version: 4 }).dedup));
  it("settles and cancels never share a group", () => {
    assert.notEqual(fanOutKeys({ ...settle, drvPath: "j1" }).group, fanOutKeys(cancel).group);
  });
});
