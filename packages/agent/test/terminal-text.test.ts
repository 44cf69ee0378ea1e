/** What the agent logs and the CLI prints of others' text: no terminal control sequences. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger, printable, printableLines } from "../src/index.ts";

describe("printable text", () => {
  it("drops colours and shows every other control character escaped", () => {
    assert.equal(printable("\u001b[1;31mred\u001b[0m plain"), "red plain");
    assert.equal(printable("title \u001b]0;pwned\u0007 up \u001b[2A csi \u009b6n"), "title \\x1b]0;pwned\\x07 up \\x1b[2A csi \\x9b6n");
    assert.equal(printable("a\rb\nc\td\u007f"), "a\\x0db\\x0ac\td\\x7f");
    assert.equal(printable("abc \u202eevil\u2066"), "abc \\u202eevil\\u2066");
    assert.equal(printable("ünïcödé ✓ 日本"), "ünïcödé ✓ 日本", "text is text");
  });

  it("keeps the lines of a message that has several", () => {
    assert.equal(printableLines("error: x\n  at \u001b]8;;http://evil\u0007ci.nix\u001b]8;;\u0007:3"), "error: x\n  at \\x1b]8;;http://evil\\x07ci.nix\\x1b]8;;\\x07:3");
  });

  it("makes each of the agent's log lines one line without control characters", () => {
    const lines: string[] = [];
    const log = createLogger("info", (line) => lines.push(line));
    log("warn", "task t: failed — error: \u001b]0;owned\u0007\nfake line");
    assert.deepEqual(lines, ["warn task t: failed — error: \\x1b]0;owned\\x07\\x0afake line"]);
  });
});
