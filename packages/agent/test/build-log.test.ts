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
});
