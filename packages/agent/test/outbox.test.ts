/**
 * The outbox while disconnected: bounded, dropping the oldest log batches first (each task's
 * first dropped batch becomes one line saying how many lines went), never anything else.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentMessage, BuildLog } from "@nimbus/protocol";
import { Outbox, type Sender } from "../src/outbox.ts";

class FakeSender implements Sender {
  connected = false;
  readonly sent: AgentMessage[] = [];
  send(message: AgentMessage): boolean {
    this.sent.push(message);
    return true;
  }
}

/** A batch of `count` lines of 100 characters (about 10 kB for 100 lines). */
function logBatch(taskId: string, seq: number, count = 100): BuildLog {
  return { type: "build-log", taskId, seq, lines: Array.from({ length: count }, (_, i) => `${taskId} line ${seq}.${i} `.padEnd(100, "x")) };
}

const describeMessage = (m: AgentMessage) =>
  m.type === "build-log" ? `${m.taskId}#${m.seq}${m.lines.length === 1 && m.lines[0]!.startsWith("…") ? ` ${m.lines[0]!.split(" of ")[0]}` : ""}` : m.type;

describe("the outbox", () => {
  it("holds at most its limit of log batches while disconnected, dropping the oldest, and says so once", () => {
    const drops: Array<[number, number]> = [];
    const outbox = new Outbox(50_000, (lines, tasks) => drops.push([lines, tasks]));
    const sender = new FakeSender();
    outbox.attach(sender);
    const result: AgentMessage = { type: "build-result", taskId: "b", drvPath: "/nix/store/00000000000000000000000000000000-x.drv", status: "succeeded", outputs: {} };
    for (let seq = 0; seq < 10; seq++) {
      outbox.send(logBatch("a", seq));
      if (seq === 2) outbox.send(result);
      outbox.send(logBatch("b", seq));
      assert.ok(outbox.bytes <= 50_000, `${outbox.bytes} bytes queued after batch ${seq}`);
    }
    sender.connected = true;
    outbox.flush();
    // The oldest batches of both tasks went; the first of each is now one line with the count.
    assert.deepEqual(sender.sent.map(describeMessage), [
      "a#0 … 800 lines",
      "b#0 … 800 lines",
      "build-result",
      "a#8",
      "b#8",
      "a#9",
      "b#9",
    ]);
    assert.deepEqual(drops, [[1600, 2]], "one warning for the whole disconnection");
    assert.equal(outbox.queued, 0);
    assert.equal(outbox.bytes, 0);
  });

  it("never drops anything but log batches, even past its limit", () => {
    const outbox = new Outbox(1_000);
    const sender = new FakeSender();
    outbox.attach(sender);
    outbox.send(logBatch("a", 0));
    const result: AgentMessage = { type: "build-result", taskId: "a", drvPath: "/nix/store/00000000000000000000000000000000-x.drv", status: "failed", exitCode: 1, logTail: ["x".repeat(2_000)] };
    outbox.send(result);
    sender.connected = true;
    outbox.flush();
    assert.deepEqual(sender.sent.map(describeMessage), ["a#0 … 100 lines", "build-result"]);
  });

  it("sends at once while connected, and forgets a cancelled task's batches", () => {
    const outbox = new Outbox(50_000);
    const sender = new FakeSender();
    outbox.attach(sender);
    outbox.send(logBatch("a", 0));
    outbox.send(logBatch("b", 0));
    assert.equal(outbox.queued, 2);
    assert.equal(outbox.drop("a"), 1);
    sender.connected = true;
    outbox.flush();
    outbox.send(logBatch("b", 1));
    assert.deepEqual(sender.sent.map(describeMessage), ["b#0", "b#1"]);
  });
});
