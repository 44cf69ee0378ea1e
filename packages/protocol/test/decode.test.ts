import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeAgentMessage, PROTOCOL_VERSION, type AgentInfo } from "../src/index.ts";

const agent: AgentInfo = {
  hostname: "builder-1",
  agentVersion: "0.1.0",
  nixVersion: "2.8.0",
  systems: ["x86_64-linux"],
  systemFeatures: ["kvm"],
  mandatoryFeatures: [],
  substituters: [],
  pushCaches: [],
  concurrentTasks: 2,
  labels: { rack: "a" },
};
const session = { id: "0123456789abcdef0123456789abcdef", secret: "A".repeat(43) };
const hello = { type: "hello", protocolVersion: PROTOCOL_VERSION, agent, session, tasksInProgress: [] };

describe("decodeAgentMessage", () => {
  it("accepts a valid hello and heartbeat", () => {
    assert.deepEqual(decodeAgentMessage(JSON.stringify(hello)), { ok: true, message: hello });
    const beat = { type: "heartbeat", sentAt: new Date().toISOString() };
    assert.deepEqual(decodeAgentMessage(JSON.stringify(beat)), { ok: true, message: beat });
  });

  const cases: Array<[string, string | undefined, string, RegExp]> = [
    ["not JSON", "{hello", "malformed-json", /not JSON/],
    ["no body", undefined, "malformed-json", /not JSON/],
    ["an array", "[1,2]", "invalid-message", /JSON object with a string `type`/],
    ["no type", "{}", "invalid-message", /string `type`/],
    ["unknown type", '{"type":"launch-missiles"}', "unknown-type", /"launch-missiles".*hello, heartbeat/],
    ["old protocol", JSON.stringify({ ...hello, protocolVersion: 0 }), "protocol-version", /speaks agent protocol 1, the agent sent 0/],
    ["missing field", JSON.stringify({ ...hello, agent: { ...agent, systems: undefined } }), "invalid-message", /agent\.systems/],
    ["wrong type", JSON.stringify({ ...hello, agent: { ...agent, concurrentTasks: "two" } }), "invalid-message", /agent\.concurrentTasks/],
    ["unknown field", JSON.stringify({ type: "heartbeat", sentAt: new Date().toISOString(), extra: 1 }), "invalid-message", /extra/],
    ["bad system", JSON.stringify({ ...hello, agent: { ...agent, systems: ["x86 linux"] } }), "invalid-message", /agent\.systems\.0/],
    ["no session", JSON.stringify({ ...hello, session: undefined }), "invalid-message", /session/],
    ["a malformed session id", JSON.stringify({ ...hello, session: { ...session, id: "xyz" } }), "invalid-message", /session\.id/],
  ];
  for (const [name, body, code, pattern] of cases) {
    it(`refuses ${name} with ${code}`, () => {
      const decoded = decodeAgentMessage(body);
      assert.equal(decoded.ok, false);
      if (decoded.ok) return;
      assert.equal(decoded.error.code, code);
      assert.match(decoded.error.message, pattern);
      assert.equal(decoded.error.fatal, code === "protocol-version");
    });
  }
});
