import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import WebSocket from "ws";
import { agentSocket } from "@nimbus/service/resource-specs";
import type { SocketEvent } from "@nimbus/service/socket-events";
import { sleep, useFixtureStack } from "./fixtures/handlers.ts";

// Short limits so API Gateway's 10 min idle and 2 h lifetime rules can be watched in about a second.
// Not shorter: the traffic that keeps a connection from going idle must survive a stall of the
// event loop on a loaded machine (300 ms closed busy connections as idle under load average 11–13).
const IDLE_MS = 1_000;
const LIFETIME_MS = 3_000;

const local = useFixtureStack({ idleTimeoutMs: IDLE_MS, connectionLifetimeMs: LIFETIME_MS, log: () => {} });
const { fixtures } = local;

async function open(): Promise<{ ws: WebSocket; id: string; closed: Promise<{ code: number; at: number }> }> {
  const known = new Set(local.stack.gateway.connectionIds());
  const ws = new WebSocket(local.stack.agentSocketUrl);
  const closed = new Promise<{ code: number; at: number }>((resolve) =>
    ws.once("close", (code) => resolve({ code, at: Date.now() })),
  );
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const id = local.stack.gateway.connectionIds().find((candidate) => !known.has(candidate));
  assert.ok(id);
  return { ws, id, closed };
}

async function expectGoingAwayDisconnect(id: string): Promise<void> {
  const event = await fixtures.waitFor<SocketEvent>(
    agentSocket.routes.$disconnect,
    (e) => e.requestContext.connectionId === id,
  );
  assert.equal(event.requestContext.disconnectStatusCode, 1001);
  assert.equal(event.requestContext.disconnectReason, "Going away");
}

test("an idle connection is closed with 1001 and $disconnect runs", async () => {
  const opened = Date.now();
  const { id, closed } = await open();
  const { code, at } = await closed;
  assert.equal(code, 1001);
  assert.ok(at - opened >= IDLE_MS - 20, `closed after ${at - opened} ms`);
  await expectGoingAwayDisconnect(id);
});

test("messages in either direction keep a connection from going idle", async () => {
  const { ws, id, closed } = await open();
  const management = new ApiGatewayManagementApiClient({ endpoint: local.stack.managementEndpoint });
  let stillOpen = true;
  void closed.then(() => (stillOpen = false));
  // Alternate client messages and PostToConnection, each well inside the idle timeout.
  for (let i = 0; i < 8; i++) {
    await sleep(IDLE_MS / 4);
    if (i % 2 === 0) ws.send("keepalive");
    else await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: "server says hi" }));
  }
  assert.ok(stillOpen, "still open after 2× the idle timeout with traffic");
  management.destroy();
  const { code } = await closed;
  assert.equal(code, 1001);
});

test("a connection is closed with 1001 at the end of its lifetime, busy or not", async () => {
  const opened = Date.now();
  const { ws, id, closed } = await open();
  const chatter = setInterval(() => ws.readyState === ws.OPEN && ws.send("busy"), IDLE_MS / 4);
  const { code, at } = await closed;
  clearInterval(chatter);
  assert.equal(code, 1001);
  assert.ok(at - opened >= LIFETIME_MS - 20, `closed after ${at - opened} ms`);
  await expectGoingAwayDisconnect(id);
});
