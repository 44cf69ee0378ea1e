import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { WebSocketServer } from "ws";
import { ScriptedAgent } from "./support/scripted-agent.ts";

// The chaos test reconnects agents in a loop: a connect that never settles stalls it for good.
describe("scripted agent (test support)", () => {
  it("rejects a connect whose connection is closed before the welcome, rather than waiting forever", async () => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((resolve) => server.once("listening", resolve));
    // As the gateway may do to a connection: ended as soon as the hello arrives.
    server.on("connection", (socket) => socket.once("message", () => socket.close(1001, "going away")));
    try {
      const agent = ScriptedAgent.create("early-close", {}, {});
      const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/agent`;
      await assert.rejects(agent.connect(url, "token"), /early-close: no welcome: closed with 1001 going away before the welcome/);
      assert.equal(agent.connected, false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
