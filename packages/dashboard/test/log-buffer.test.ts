import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LogBuffer, plainText } from "../src/log/log-buffer.ts";

const drvPath = "/nix/store/0c3sdvjw5y4l2n8zcq5jq3cyqz1lrd7a-hello.drv";

describe("LogBuffer", () => {
  it("opens at the tail, puts older pages in front and new lines at the end, keeping line ids", () => {
    const log = new LogBuffer({ drvPath, lines: ["l3", "l4"], truncated: true, start: "c3", end: "c4", building: true, attempt: 1 });
    const ids = log.lines.map((l) => l.id);
    assert.ok(log.canLoadOlder());
    assert.equal(log.prepend({ drvPath, lines: ["l1", "l2"], truncated: false, start: "c1" }), 2);
    assert.equal(log.append({ drvPath, lines: ["l5"], truncated: false, end: "c5", building: false }), 1);
    assert.deepEqual(log.lines.map((l) => l.text), ["l1", "l2", "l3", "l4", "l5"]);
    assert.deepEqual(log.lines.slice(2, 4).map((l) => l.id), ids, "lines held before keep their ids");
    assert.equal(new Set(log.lines.map((l) => l.id)).size, 5);
    assert.deepEqual([log.start, log.end, log.building, log.canLoadOlder()], ["c1", "c5", false, false]);
  });

  it("cannot page back without a cursor (an API that sends the tail only)", () => {
    const log = new LogBuffer({ drvPath, lines: ["last"], truncated: true });
    assert.equal(log.canLoadOlder(), false);
  });

  it("searches ignoring case", () => {
    const log = new LogBuffer({ drvPath, lines: ["make: Entering", "error: oops", "ERROR again", "done"], truncated: false });
    assert.deepEqual(log.search("error"), [1, 2]);
    assert.deepEqual(log.search(""), []);
  });

  it("shows terminal colour codes as plain text", () => {
    assert.equal(plainText("\x1b[31;1merror:\x1b[0m build failed"), "error: build failed");
    assert.equal(plainText("no codes"), "no codes");
  });
});
