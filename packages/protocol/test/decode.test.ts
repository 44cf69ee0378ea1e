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
const cacheInfo = { name: "shared", kind: "NixCache", publicKeys: ["shared-1:AAAA"], push: true, pull: true };
const drv = "/nix/store/3x7wq3p8qb6z4l1c2k0v9n8m7h6g5f4d-a.drv";
const derivationEvents = (extra: Record<string, unknown>) => ({
  type: "evaluation-events",
  taskId: "eval-j1",
  seq: 0,
  events: [{ kind: "derivation", drvPath: drv, system: "x86_64-linux", requiredFeatures: [], inputDrvs: [], outputs: { out: "/nix/store/x-a" }, ...extra }],
});
const buildResult = { type: "build-result", taskId: "b-1", drvPath: drv, status: "succeeded", outputs: { out: "/nix/store/x-a" } };

describe("decodeAgentMessage", () => {
  it("accepts a valid hello and heartbeat", () => {
    assert.deepEqual(decodeAgentMessage(JSON.stringify(hello)), { ok: true, message: hello });
    const beat = { type: "heartbeat", sentAt: new Date().toISOString() };
    assert.deepEqual(decodeAgentMessage(JSON.stringify(beat)), { ok: true, message: beat });
  });

  it("accepts the binary-cache fields: caches and store in hello, sources, push reports, agent-info", () => {
    const withCaches = { ...hello, agent: { ...agent, caches: [cacheInfo], storeId: "builder-1/0123456789ab", pushCaches: ["shared"] } };
    assert.equal(decodeAgentMessage(JSON.stringify(withCaches)).ok, true);
    const sources = [["cache:shared", "store:builder-1/0123456789ab"], ["substituter:https://cache.nixos.org"]];
    assert.equal(decodeAgentMessage(JSON.stringify(derivationEvents({ sources }))).ok, true);
    const pushed = { ...buildResult, caches: [{ cache: "shared", status: "pushed", paths: 2, alreadyPresent: 1 }, { cache: "web", status: "failed", reason: "HTTP 403" }] };
    assert.equal(decodeAgentMessage(JSON.stringify(pushed)).ok, true);
    assert.equal(decodeAgentMessage(JSON.stringify({ type: "agent-info", agent: withCaches.agent })).ok, true);
  });

  const cases: Array<[string, string | undefined, string, RegExp]> = [
    ["not JSON", "{hello", "malformed-json", /not JSON/],
    ["no body", undefined, "malformed-json", /not JSON/],
    ["an array", "[1,2]", "invalid-message", /JSON object with a string `type`/],
    ["no type", "{}", "invalid-message", /string `type`/],
    ["unknown type", '{"type":"launch-missiles"}', "unknown-type", /"launch-missiles".*hello, heartbeat/],
    ["old protocol", JSON.stringify({ ...hello, protocolVersion: PROTOCOL_VERSION - 1 }), "protocol-version", new RegExp(`speaks agent protocol ${PROTOCOL_VERSION}, the agent sent ${PROTOCOL_VERSION - 1}`)],
    ["missing field", JSON.stringify({ ...hello, agent: { ...agent, systems: undefined } }), "invalid-message", /agent\.systems/],
    ["wrong type", JSON.stringify({ ...hello, agent: { ...agent, concurrentTasks: "two" } }), "invalid-message", /agent\.concurrentTasks/],
    ["unknown field", JSON.stringify({ type: "heartbeat", sentAt: new Date().toISOString(), extra: 1 }), "invalid-message", /extra/],
    ["bad system", JSON.stringify({ ...hello, agent: { ...agent, systems: ["x86 linux"] } }), "invalid-message", /agent\.systems\.0/],
    ["no session", JSON.stringify({ ...hello, session: undefined }), "invalid-message", /session/],
    ["a malformed session id", JSON.stringify({ ...hello, session: { ...session, id: "xyz" } }), "invalid-message", /session\.id/],
    // What the service may learn of a cache: a token or signing key in it is refused, not stored.
    ["a cache with a token", JSON.stringify({ ...hello, agent: { ...agent, caches: [{ ...cacheInfo, authToken: "secret" }] } }), "invalid-message", /authToken/],
    ["a store id that is not one", JSON.stringify({ ...hello, agent: { ...agent, storeId: "../etc" } }), "invalid-message", /agent\.storeId/],
    ["a source of no known kind", JSON.stringify(derivationEvents({ sources: [["ftp://cache"]] })), "invalid-message", /sources\.0\.0/],
    ["a need with no place", JSON.stringify(derivationEvents({ sources: [[]] })), "invalid-message", /sources\.0/],
    ["a push report with no reason", JSON.stringify({ ...buildResult, caches: [{ cache: "c", status: "failed" }] }), "invalid-message", /caches\.0\.reason/],
    ["agent-info without the agent", JSON.stringify({ type: "agent-info" }), "invalid-message", /agent/],
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
