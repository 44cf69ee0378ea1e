import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { beforeEach, describe, test } from "node:test";
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import WebSocket from "ws";
import { MAX_MESSAGE_BYTES } from "../../protocol/src/limits.ts";
import { agentSocket } from "@nimbus/service/resource-specs";
import type { SocketEvent } from "@nimbus/service/socket-events";
import { useFixtureStack } from "./fixtures/handlers.ts";

const { $connect, $disconnect, $default } = agentSocket.routes;
let management: ApiGatewayManagementApiClient;
const local = useFixtureStack(
  {},
  {
    started: (stack) => {
      management = new ApiGatewayManagementApiClient({
        endpoint: stack.managementEndpoint,
        region: "us-east-1",
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      });
    },
    stopping: () => management.destroy(),
  },
);
const { fixtures, logs } = local;

beforeEach(() => {
  fixtures.reset();
  logs.length = 0;
});

type Refusal = { status: number; body: string };

/** Opens a client connection, or resolves the HTTP answer that refused it. */
function connect(path = "", headers: Record<string, string> = {}): Promise<WebSocket | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${local.stack.agentSocketUrl}${path}`, { headers });
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_request, response: IncomingMessage) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    ws.once("error", reject);
  });
}

async function open(path = "", headers: Record<string, string> = {}): Promise<{ ws: WebSocket; id: string }> {
  const before = new Set(local.stack.gateway.connectionIds());
  const ws = await connect(path, headers);
  assert.ok(ws instanceof WebSocket, `connection refused: ${JSON.stringify(ws)}`);
  const id = local.stack.gateway.connectionIds().find((candidate) => !before.has(candidate));
  assert.ok(id, "the gateway lists the new connection");
  return { ws, id };
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once("message", (data) => resolve(data.toString())));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === ws.CLOSED) throw new Error("already closed");
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

const ofConnection = (id: string) => (e: SocketEvent) => e.requestContext.connectionId === id;

describe("$connect", () => {
  test("accepts with a CONNECT event shaped like API Gateway's", async () => {
    const { ws, id } = await open("?token=abc&x=1&x=2", { Authorization: "Bearer t0k3n", "User-Agent": "nimbus-agent/1" });
    const [event] = fixtures.events<SocketEvent>($connect);
    assert.ok(event);
    const ctx = event.requestContext;
    assert.equal(ctx.routeKey, "$connect");
    assert.equal(ctx.eventType, "CONNECT");
    assert.equal(ctx.connectionId, id);
    assert.match(id, /^[A-Za-z0-9+/]{14}[A-Za-z0-9+/=]=$/);
    assert.equal(ctx.stage, "local");
    assert.equal(ctx.apiId, "local");
    assert.equal(ctx.messageDirection, "IN");
    assert.equal(ctx.domainName, new URL(local.stack.url).host);
    assert.equal(ctx.identity.sourceIp, "127.0.0.1");
    assert.equal(ctx.identity.userAgent, "nimbus-agent/1");
    assert.equal(typeof ctx.requestId, "string");
    assert.match(ctx.requestTime, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    assert.ok(Math.abs(ctx.requestTimeEpoch - Date.now()) < 5_000);
    assert.ok(ctx.connectedAt <= Date.now());
    // Headers keep the case they were sent with, as API Gateway's do.
    assert.equal(event.headers?.Authorization, "Bearer t0k3n");
    assert.deepEqual(event.multiValueHeaders?.Authorization, ["Bearer t0k3n"]);
    assert.equal(event.headers?.["X-Forwarded-For"], "127.0.0.1");
    assert.deepEqual(event.queryStringParameters, { token: "abc", x: "2" });
    assert.deepEqual(event.multiValueQueryStringParameters, { token: ["abc"], x: ["1", "2"] });
    assert.equal(event.isBase64Encoded, false);
    ws.close();
    await fixtures.waitFor($disconnect, ofConnection(id));
  });

  test("a non-2xx result refuses the upgrade with that status and body; no socket, no $disconnect", async () => {
    fixtures.on($connect, async () => ({ statusCode: 401, body: "bad token" }));
    const refusal = await connect("?token=bad");
    assert.deepEqual(refusal, { status: 401, body: "bad token" });
    const refused = fixtures.events<SocketEvent>($connect)[0]!.requestContext.connectionId;
    assert.ok(!local.stack.gateway.connectionIds().includes(refused));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(fixtures.events<SocketEvent>($disconnect).filter(ofConnection(refused)).length, 0);
  });

  test("a throwing handler refuses with 500 and is logged on one line", async () => {
    fixtures.on($connect, async () => {
      throw new Error("table missing");
    });
    const refusal = await connect();
    assert.ok(!(refusal instanceof WebSocket));
    assert.equal(refusal.status, 500);
    assert.ok(!local.stack.gateway.connectionIds().includes(fixtures.events<SocketEvent>($connect)[0]!.requestContext.connectionId));
    assert.deepEqual(
      logs.filter((line) => line.includes("$connect")).map((line) => line.replace(/\$connect \S+/, "$connect ID")),
      ["socket: $connect ID failed: Error: table missing"],
    );
  });

  test("upgrades elsewhere than the socket path get 404 without invoking $connect", async () => {
    const ws = new WebSocket(`${local.stack.url.replace("http", "ws")}/elsewhere`);
    const status = await new Promise<number>((resolve) => {
      ws.once("unexpected-response", (_request, response: IncomingMessage) => resolve(response.statusCode ?? 0));
      ws.once("error", () => resolve(-1));
    });
    assert.equal(status, 404);
    assert.equal(fixtures.events($connect).length, 0);
  });

  test("a subprotocol is accepted only when $connect returns it", async () => {
    fixtures.on($connect, async () => ({ statusCode: 200, headers: { "Sec-WebSocket-Protocol": "nimbus.v1" } }));
    const ws = new WebSocket(local.stack.agentSocketUrl, ["nimbus.v1", "other"]);
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    assert.equal(ws.protocol, "nimbus.v1");
    ws.close();
  });
});

describe("$default", () => {
  test("each text message becomes a MESSAGE event", async () => {
    const { ws, id } = await open();
    ws.send('{"type":"hello"}');
    const event = await fixtures.waitFor<SocketEvent>($default);
    assert.equal(event.body, '{"type":"hello"}');
    assert.equal(event.isBase64Encoded, false);
    assert.equal(event.requestContext.routeKey, "$default");
    assert.equal(event.requestContext.eventType, "MESSAGE");
    assert.equal(event.requestContext.connectionId, id);
    assert.equal(typeof event.requestContext.messageId, "string");
    assert.equal(event.headers, undefined);
    ws.close();
  });

  test("messages are handled concurrently", async () => {
    const { ws } = await open();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    fixtures.on($default, async (event: SocketEvent) => {
      if (event.body === "slow") await gate;
    });
    ws.send("slow");
    ws.send("fast");
    await fixtures.waitFor<SocketEvent>($default, (e) => e.body === "fast");
    release();
    ws.close();
  });

  test("a throwing handler is logged and the client gets API Gateway's error message", async () => {
    const { ws, id } = await open();
    fixtures.on($default, async () => {
      throw new TypeError("boom");
    });
    const reply = nextMessage(ws);
    ws.send("hi");
    const message = JSON.parse(await reply) as Record<string, string>;
    assert.equal(message.message, "Internal server error");
    assert.equal(message.connectionId, id);
    assert.equal(typeof message.requestId, "string");
    const failures = logs.filter((line) => line.includes("$default"));
    assert.equal(failures.length, 1);
    assert.match(failures[0]!, /TypeError: boom$/);
    assert.ok(!failures[0]!.includes("\n"));
    ws.close();
  });

  test(`a message of exactly ${MAX_MESSAGE_BYTES} bytes goes through; one byte more closes with 1009`, async () => {
    const { ws, id } = await open();
    ws.send("a".repeat(MAX_MESSAGE_BYTES));
    const event = await fixtures.waitFor<SocketEvent>($default);
    assert.equal(event.body?.length, MAX_MESSAGE_BYTES);
    const close = closed(ws);
    ws.send("a".repeat(MAX_MESSAGE_BYTES + 1));
    assert.equal((await close).code, 1009);
    const disconnect = await fixtures.waitFor<SocketEvent>($disconnect, ofConnection(id));
    assert.equal(disconnect.requestContext.disconnectStatusCode, 1009);
    assert.equal(fixtures.events<SocketEvent>($default).filter(ofConnection(id)).length, 1);
  });

  test("a binary frame closes the connection with 1003", async () => {
    const { ws, id } = await open();
    const close = closed(ws);
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await close).code, 1003);
    assert.equal(fixtures.events<SocketEvent>($default).filter(ofConnection(id)).length, 0);
  });
});

describe("$disconnect", () => {
  test("follows a client close with its status code and reason", async () => {
    const { ws, id } = await open();
    ws.close(4000, "bye");
    const event = await fixtures.waitFor<SocketEvent>($disconnect, ofConnection(id));
    assert.equal(event.requestContext.routeKey, "$disconnect");
    assert.equal(event.requestContext.eventType, "DISCONNECT");
    assert.equal(event.requestContext.disconnectStatusCode, 4000);
    assert.equal(event.requestContext.disconnectReason, "bye");
    assert.ok(!local.stack.gateway.connectionIds().includes(id));
  });

  test("follows a dead socket with 1006", async () => {
    const { ws, id } = await open();
    ws.terminate();
    const event = await fixtures.waitFor<SocketEvent>($disconnect, ofConnection(id));
    assert.equal(event.requestContext.disconnectStatusCode, 1006);
  });

  test("closeConnection closes with the code given", async () => {
    const { ws, id } = await open();
    const close = closed(ws);
    local.stack.gateway.closeConnection(id, 4001);
    assert.equal((await close).code, 4001);
    const event = await fixtures.waitFor<SocketEvent>($disconnect, ofConnection(id));
    assert.equal(event.requestContext.disconnectStatusCode, 4001);
  });

  test("dropConnection kills the socket without $disconnect", async () => {
    const { ws, id } = await open();
    const close = closed(ws);
    local.stack.gateway.dropConnection(id);
    assert.equal((await close).code, 1006);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(fixtures.events<SocketEvent>($disconnect).filter(ofConnection(id)).length, 0);
    assert.ok(!local.stack.gateway.connectionIds().includes(id));
  });
});

describe("management API through the real SDK client", () => {
  test("a handler replies with PostToConnection at Resource.AgentSocket.managementEndpoint", async () => {
    const { managementEndpoint } = JSON.parse(process.env.SST_RESOURCE_AgentSocket!) as { managementEndpoint: string };
    assert.equal(managementEndpoint, local.stack.managementEndpoint);
    const client = new ApiGatewayManagementApiClient({ endpoint: managementEndpoint });
    fixtures.on($default, async (event: SocketEvent) => {
      await client.send(
        new PostToConnectionCommand({ ConnectionId: event.requestContext.connectionId, Data: `echo:${event.body}` }),
      );
    });
    const { ws } = await open();
    const reply = nextMessage(ws);
    ws.send("ping");
    assert.equal(await reply, "echo:ping");
    client.destroy();
    ws.close();
  });

  test("PostToConnection sends one text frame with the bytes given", async () => {
    const { ws, id } = await open();
    const received = new Promise<{ text: string; isBinary: boolean }>((resolve) =>
      ws.once("message", (data, isBinary) => resolve({ text: data.toString(), isBinary })),
    );
    await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('{"ü":1}') }));
    assert.deepEqual(await received, { text: '{"ü":1}', isBinary: false });
    ws.close();
  });

  test("GetConnection describes the connection", async () => {
    const { ws, id } = await open("", { "User-Agent": "agent-ua" });
    const info = await management.send(new GetConnectionCommand({ ConnectionId: id }));
    assert.ok(info.ConnectedAt instanceof Date);
    assert.ok(info.LastActiveAt instanceof Date);
    assert.ok(Math.abs(info.ConnectedAt.getTime() - Date.now()) < 5_000);
    assert.deepEqual(info.Identity, { SourceIp: "127.0.0.1", UserAgent: "agent-ua" });
    ws.close();
  });

  test("DeleteConnection closes the socket and $disconnect follows; the id is then gone", async () => {
    const { ws, id } = await open();
    const close = closed(ws);
    await management.send(new DeleteConnectionCommand({ ConnectionId: id }));
    await close;
    await fixtures.waitFor<SocketEvent>($disconnect, ofConnection(id));
    await assert.rejects(
      management.send(new PostToConnectionCommand({ ConnectionId: id, Data: "late" })),
      (error: Error) => error.name === "GoneException",
    );
  });

  for (const id of ["AAAAAAAAAAAAAAA=", "a+b/c=d==", "L0SM9cOFvHcCIhw="]) {
    test(`an unknown id (${id}) raises GoneException for POST, GET and DELETE`, async () => {
      const isGone = (error: Error) => error.name === "GoneException";
      await assert.rejects(management.send(new PostToConnectionCommand({ ConnectionId: id, Data: "x" })), isGone);
      await assert.rejects(management.send(new GetConnectionCommand({ ConnectionId: id })), isGone);
      await assert.rejects(management.send(new DeleteConnectionCommand({ ConnectionId: id })), isGone);
    });
  }

  test("without the stack's secret in the path, nothing is served and no connection is touched", async () => {
    const { ws, id } = await open();
    let received = 0;
    ws.on("message", () => received++);
    const secret = new URL(local.stack.managementEndpoint).pathname.split("/")[2]!;
    const wrong = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    for (const path of [`/_gateway/@connections/${encodeURIComponent(id)}`, `/_gateway/${wrong}/@connections/${encodeURIComponent(id)}`, `/_gateway/`, `/_gateway`]) {
      for (const method of ["POST", "GET", "DELETE"]) {
        const response = await fetch(`${local.stack.url}${path}`, { method, ...(method === "POST" ? { body: "forged" } : {}) });
        assert.equal(response.status, 404, `${method} ${path}`);
        assert.equal(JSON.stringify(await response.json()).includes(secret), false, "the answer does not give the secret away");
      }
    }
    // The right endpoint still reaches it: the connection was never closed nor written to.
    const reply = nextMessage(ws);
    await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: "still here" }));
    assert.equal(await reply, "still here");
    assert.equal(received, 1);
    ws.close();
  });

  test("an id with + / = reaches the right connection (URL-decoded)", async () => {
    // Real ids are random; keep opening until one needs encoding beyond its trailing "=".
    for (let attempt = 0; attempt < 50; attempt++) {
      const { ws, id } = await open();
      if (/[+/]/.test(id)) {
        const reply = nextMessage(ws);
        await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: "found" }));
        assert.equal(await reply, "found");
        ws.close();
        return;
      }
      ws.close();
    }
    assert.fail("no connection id with + or / in 50 tries");
  });

  test(`a POST over ${MAX_MESSAGE_BYTES} bytes raises PayloadTooLargeException`, async () => {
    const { ws, id } = await open();
    await assert.rejects(
      management.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.alloc(MAX_MESSAGE_BYTES + 1, 97) })),
      (error: Error) => error.name === "PayloadTooLargeException",
    );
    ws.close();
  });
});
