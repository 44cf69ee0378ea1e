import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_FRAME_BYTES, PROTOCOL_VERSION } from "@nimbus/protocol";
import { Backoff } from "../src/index.ts";
import { newSessionCredential } from "../src/session-credential.ts";
import { decodeServiceMessage, encodeAgentMessage, OutgoingMessageError } from "../src/wire.ts";

describe("Backoff", () => {
  it("starts around 0.5 s, doubles, and is capped at 30 s", () => {
    const top = new Backoff({ random: () => 0.999999 });
    const ceilings = Array.from({ length: 9 }, () => top.next());
    assert.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it("jitters each delay between half and all of its ceiling", () => {
    const low = new Backoff({ random: () => 0 });
    assert.deepEqual([low.next(), low.next(), low.next()], [250, 500, 1000]);
    const real = new Backoff();
    for (let i = 0; i < 50; i++) {
      const delay = real.next();
      assert.ok(delay >= 250 && delay <= 30_000, `${delay}`);
    }
  });

  it("starts over after reset()", () => {
    const backoff = new Backoff({ random: () => 0.999999 });
    backoff.next();
    backoff.next();
    backoff.reset();
    assert.equal(backoff.next(), 500);
  });

  it("never overflows however long the outage", () => {
    const backoff = new Backoff({ random: () => 0.999999 });
    for (let i = 0; i < 5000; i++) backoff.next();
    assert.equal(backoff.next(), 30_000);
  });
});

describe("wire", () => {
  it("encodes a valid heartbeat", () => {
    const text = encodeAgentMessage({ type: "heartbeat", sentAt: "2025-01-01T00:00:00.000Z" });
    assert.deepEqual(JSON.parse(text), { type: "heartbeat", sentAt: "2025-01-01T00:00:00.000Z" });
  });

  it("refuses to send a message that breaks its schema", () => {
    assert.throws(() => encodeAgentMessage({ type: "heartbeat", sentAt: "now" }), OutgoingMessageError);
  });

  it("refuses to send a message over the frame limit", () => {
    const labels = { big: "x".repeat(MAX_FRAME_BYTES) };
    assert.throws(
      () =>
        encodeAgentMessage({
          type: "hello",
          protocolVersion: PROTOCOL_VERSION,
          session: newSessionCredential(),
          tasksInProgress: [],
          agent: {
            hostname: "h",
            agentVersion: "0.1.0",
            nixVersion: "2.8.0",
            systems: ["x86_64-linux"],
            systemFeatures: [],
            mandatoryFeatures: [],
            substituters: [],
            pushCaches: [],
            concurrentTasks: 1,
            labels,
          },
        }),
      /over the 32768-byte frame limit/,
    );
  });

  it("decodes service messages and explains what it ignores", () => {
    const ack = decodeServiceMessage('{"type":"heartbeat-ack","sentAt":"2025-01-01T00:00:00.000Z"}');
    assert.ok(ack.ok && ack.message.type === "heartbeat-ack");
    assert.deepEqual(decodeServiceMessage('{"type":"launch"}'), { ok: false, problem: 'ignored a message of unknown type "launch"' });
    assert.deepEqual(decodeServiceMessage("[1]"), { ok: false, problem: 'ignored a message without a string "type": [1]' });
    const invalid = decodeServiceMessage('{"type":"welcome"}');
    assert.ok(!invalid.ok && invalid.problem.startsWith('ignored an invalid "welcome" message'));
    const notJson = decodeServiceMessage("hello?");
    assert.ok(!notJson.ok && notJson.problem.startsWith("ignored a frame that is not JSON"));
  });
});
