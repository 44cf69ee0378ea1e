import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { keyMove, rowWindow, scrollToShow } from "../src/list/window.ts";

describe("virtual list arithmetic", () => {
  it("renders the rows in view and a few either side, never past the ends", () => {
    assert.deepEqual(rowWindow(0, 320, 32, 100_000, 5), { first: 0, last: 10, start: 0, end: 15 });
    assert.deepEqual(rowWindow(32 * 50_000 + 16, 320, 32, 100_000, 5), { first: 50_000, last: 50_011, start: 49_995, end: 50_016 });
    assert.deepEqual(rowWindow(0, 320, 32, 3, 5), { first: 0, last: 3, start: 0, end: 3 });
    assert.deepEqual(rowWindow(0, 320, 32, 0, 5), { first: 0, last: 0, start: 0, end: 0 });
  });

  it("scrolls as little as needed to show a row", () => {
    assert.equal(scrollToShow(5, 0, 320, 32), 0);
    assert.equal(scrollToShow(10, 0, 320, 32), 32);
    assert.equal(scrollToShow(2, 200, 320, 32), 64);
  });

  it("moves the active row with the keyboard, within the list", () => {
    assert.equal(keyMove("ArrowDown", 0, 10, 5), 1);
    assert.equal(keyMove("j", 9, 10, 5), 9);
    assert.equal(keyMove("ArrowUp", 0, 10, 5), 0);
    assert.equal(keyMove("PageDown", 0, 100_000, 20), 19);
    assert.equal(keyMove("End", 3, 100_000, 20), 99_999);
    assert.equal(keyMove("Home", 3, 10, 5), 0);
    assert.equal(keyMove("x", 3, 10, 5), undefined);
    assert.equal(keyMove("ArrowDown", 0, 0, 5), undefined);
  });
});
