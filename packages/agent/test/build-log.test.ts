/** When a build's log goes out: node:test's mock timers stand in for the clock. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentMessage } from "@nimbus/protocol";
import { BuildLogStream } from "../src/build-log.ts";
import type { Link } from "../src/outbox.ts";

function recorder(): { link: Link; sent: AgentMessage[] } {
  const sent: AgentMessage[] = [];
  return { sent, link: { send: (m) => sent.push(m), sendNow: (m) => (sent.push(m), true) } };
}

const lines = (sent: AgentMessage[]) => sent.map((m) => (m.type === "build-log" ? [m.seq, m.lines] : m.type));

describe("BuildLogStream", () => {
  it("holds the first batch 1 s, so a short build's log goes in one batch with its end", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const { link, sent } = recorder();
    const log = new BuildLogStream(link, "b-1-0");
    log.line("building");
    t.mock.timers.tick(500);
    log.line("done");
    t.mock.timers.tick(400);
    assert.deepEqual(sent, [], "nothing before 1 s");
    log.flush();
    assert.deepEqual(lines(sent), [[0, ["building", "done"]]]);
    t.mock.timers.tick(2000);
    assert.equal(sent.length, 1, "no empty batch after the flush");
  });

  it("holds a short build's log another 1 s once its outputs go up, so the push's lines join it", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const { link, sent } = recorder();
    const log = new BuildLogStream(link, "b-1-0");
    log.line("building");
    t.mock.timers.tick(800);
    log.pushing();
    t.mock.timers.tick(900);
    assert.deepEqual(sent, [], "1.7 s in, but the push started 0.9 s ago");
    log.line("pushed 1 path");
    log.flush();
    assert.deepEqual(lines(sent), [[0, ["building", "pushed 1 path"]]], "one batch");

    // A long push: the log goes 1 s after it started, and the rest every 250 ms as before.
    const long = recorder();
    const other = new BuildLogStream(long.link, "b-2-0");
    other.line("building");
    other.pushing();
    t.mock.timers.tick(1000);
    assert.deepEqual(lines(long.sent), [[0, ["building"]]]);
    other.line("pushed");
    other.pushing();
    t.mock.timers.tick(250);
    assert.deepEqual(lines(long.sent), [[0, ["building"]], [1, ["pushed"]]], "a log sent already is not held again");
  });

  it("sends the first batch after 1 s, then every 250 ms", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const { link, sent } = recorder();
    const log = new BuildLogStream(link, "b-1-0");
    log.line("a");
    t.mock.timers.tick(999);
    assert.equal(sent.length, 0);
    t.mock.timers.tick(1);
    assert.deepEqual(lines(sent), [[0, ["a"]]]);
    log.line("b");
    t.mock.timers.tick(249);
    assert.equal(sent.length, 1);
    t.mock.timers.tick(1);
    assert.deepEqual(lines(sent), [[0, ["a"]], [1, ["b"]]]);
  });

  it("sends a full batch at once, whatever the timer", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const { link, sent } = recorder();
    const log = new BuildLogStream(link, "b-1-0");
    for (let i = 0; i <= 1000; i++) log.line(`line ${i}`);
    assert.equal(sent.length, 1);
    assert.equal((sent[0] as { lines: string[] }).lines.length, 1000);
  });

  it("gives the unsent batch to the result when it fits, and leaves it to flush when it does not", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const { link, sent } = recorder();
    const log = new BuildLogStream(link, "b-1-0");
    log.line("a");
    t.mock.timers.tick(1000);
    log.line("b");
    log.line("c");
    assert.deepEqual(log.lastBatch(1000), { seq: 1, lines: ["b", "c"] }, "numbered after the batch sent");
    t.mock.timers.tick(5000);
    assert.deepEqual(lines(sent), [[0, ["a"]]], "taken, so never sent on its own");
    assert.equal(log.lastBatch(1000), undefined, "nothing left");

    const big = recorder();
    const other = new BuildLogStream(big.link, "b-2-0");
    other.line("x".repeat(200));
    assert.equal(other.lastBatch(100), undefined, "does not fit the room the result has left");
    other.flush();
    assert.deepEqual(lines(big.sent), [[0, ["x".repeat(200)]]], "still sent, on its own");
  });
});
