/**
 * A small real service for agent tests: HTTP `GET /api/service-info` and a `ws` server on
 * `/agent` speaking the protocol, with knobs to misbehave (refuse upgrades, skip acks, …).
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { AgentMessage, type Hello, PROTOCOL_VERSION, type ServiceInfo } from "@nimbus/protocol";

export const GOOD_TOKEN = "nimbus_test_token_1234";

export interface FakeServiceOptions {
  /** Status for every upgrade, or a function of the attempt number (1-based); 101 accepts. */
  upgradeStatus?: number | ((attempt: number) => number);
  /** Status of service-info per request number (1-based); 200 answers. */
  serviceInfoStatus?: (request: number) => number;
  serviceInfo?: Partial<ServiceInfo>;
  /** Sent in the welcome. */
  heartbeatIntervalMs?: number;
  ackHeartbeats?: boolean;
  /** Replaces the welcome: what the service does on a valid hello. */
  onHello?: (connection: FakeConnection, hello: Hello) => void;
}

export interface FakeConnection {
  id: string;
  ws: WebSocket;
  authorization: string | undefined;
  /** Everything the agent sent, parsed (invalid frames are recorded as `{ invalid: text }`). */
  received: unknown[];
  openedAt: number;
  /** The close code and reason as the server saw them. */
  closed: Promise<{ code: number; reason: string }>;
  welcome(): void;
}

export class FakeService {
  readonly connections: FakeConnection[] = [];
  readonly hellos: Hello[] = [];
  /** Every upgrade request, accepted or not, with its time. */
  readonly upgradeTimes: number[] = [];
  serviceInfoRequests = 0;
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly waiters = new Set<() => void>();

  private constructor(readonly options: FakeServiceOptions) {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on("upgrade", (req, socket, head) => {
      this.upgradeTimes.push(Date.now());
      const attempt = this.upgradeTimes.length;
      const status =
        typeof options.upgradeStatus === "function" ? options.upgradeStatus(attempt) : (options.upgradeStatus ?? 101);
      const authorization = req.headers.authorization;
      const refused = status !== 101 ? status : authorization === `Bearer ${GOOD_TOKEN}` ? 101 : 401;
      if (refused !== 101) {
        socket.end(`HTTP/1.1 ${refused} ${http.STATUS_CODES[refused] ?? "Refused"}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        this.notify();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, authorization));
    });
  }

  static async start(options: FakeServiceOptions = {}): Promise<FakeService> {
    const service = new FakeService(options);
    service.server.listen(0, "127.0.0.1");
    await once(service.server, "listening");
    return service;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get apiBaseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Heartbeats received on every connection so far. */
  heartbeats(): unknown[] {
    return this.connections.flatMap((c) => c.received.filter((m) => (m as { type?: string }).type === "heartbeat"));
  }

  /** Resolves once `predicate` holds (checked after every event), or fails after `timeoutMs`. */
  async until(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    if (predicate()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(check, 20);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== "GET" || req.url !== "/api/service-info") {
      res.writeHead(404).end();
      return;
    }
    this.serviceInfoRequests++;
    const status = this.options.serviceInfoStatus?.(this.serviceInfoRequests) ?? 200;
    if (status !== 200) {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "x", message: "down" } }));
      this.notify();
      return;
    }
    const info: ServiceInfo = {
      serviceVersion: "0.1.0",
      protocolVersion: PROTOCOL_VERSION,
      agentSocketUrl: `ws://127.0.0.1:${this.port}/agent`,
      ...this.options.serviceInfo,
    };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(info));
    this.notify();
  }

  private onConnection(ws: WebSocket, authorization: string | undefined): void {
    const connection: FakeConnection = {
      id: `conn-${this.connections.length + 1}`,
      ws,
      authorization,
      received: [],
      openedAt: Date.now(),
      closed: new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }))),
      welcome: () =>
        ws.send(
          JSON.stringify({
            type: "welcome",
            protocolVersion: PROTOCOL_VERSION,
            serviceVersion: "0.1.0",
            connectionId: connection.id,
            heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 30_000,
          }),
        ),
    };
    this.connections.push(connection);
    void connection.closed.then(() => this.notify());
    ws.on("message", (data) => {
      const text = data.toString();
      const parsed = AgentMessage.safeParse(safeJson(text));
      connection.received.push(parsed.success ? parsed.data : { invalid: text });
      if (parsed.success && parsed.data.type === "hello") {
        this.hellos.push(parsed.data);
        if (this.options.onHello) this.options.onHello(connection, parsed.data);
        else connection.welcome();
      } else if (parsed.success && parsed.data.type === "heartbeat" && this.options.ackHeartbeats !== false) {
        ws.send(JSON.stringify({ type: "heartbeat-ack", sentAt: parsed.data.sentAt }));
      }
      this.notify();
    });
    this.notify();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A log that keeps its lines, for asserting what the agent said. */
export function memoryLog(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}
