/**
 * A small real service for agent tests: HTTP `GET /api/service-info` and a `ws` server on
 * `/agent` speaking the protocol, with knobs to misbehave (refuse upgrades, skip acks, …);
 * it pushes tasks, acknowledges evaluation batches and final messages (`result-ack`), cancels
 * tasks and disowns them (`unknown-task`), and records `pause` and `goodbye`.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import {
  AgentMessage,
  type BuildTask,
  type EvaluateTask,
  type EvaluationDone,
  type EvaluationEvent,
  type EvaluationEvents,
  type Hello,
  PROTOCOL_VERSION,
  type ServiceInfo,
  type ServiceMessage,
} from "@nimbus/protocol";

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
  /** Answer every `evaluation-events` batch with an `ack` (default true; see `ackBatches`). */
  ackBatches?: boolean;
  /** Answer every `build-result` and `evaluation-done` with `result-ack` (default true; see `ackResults`). */
  ackResults?: boolean;
}

export interface FakeConnection {
  id: string;
  ws: WebSocket;
  authorization: string | undefined;
  /** Everything the agent sent, parsed (invalid frames are recorded as `{ invalid: text }`). */
  received: unknown[];
  /** The same, as the raw frames (for size checks). */
  frames: string[];
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
  /** Whether batches are acknowledged as they arrive; switch it on to release held ones with `ackPending()`. */
  ackBatches: boolean;
  /** Whether final messages are acknowledged as they arrive; `ackResult()` acknowledges one by hand. */
  ackResults: boolean;
  /** Task ids whose final message was acknowledged, in order (once per `result-ack` sent). */
  readonly resultAcks: string[] = [];
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly waiters = new Set<() => void>();

  private constructor(readonly options: FakeServiceOptions) {
    this.ackBatches = options.ackBatches ?? true;
    this.ackResults = options.ackResults ?? true;
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

  /** Everything every connection received, in order. */
  messages(): AgentMessage[] {
    return this.connections.flatMap((c) => c.received.filter((m): m is AgentMessage => !(m as { invalid?: string }).invalid));
  }

  /** The agent's messages about one task (every copy of a resent batch included). */
  taskMessages(taskId: string): AgentMessage[] {
    return this.messages().filter((m) => "taskId" in m && m.taskId === taskId);
  }

  /** Sends a task (or anything else) on the newest connection. */
  send(message: ServiceMessage | EvaluateTask | BuildTask): void {
    const connection = this.connections.at(-1);
    if (!connection || connection.ws.readyState !== WebSocket.OPEN) throw new Error("no open connection to send on");
    connection.ws.send(JSON.stringify(message));
  }

  /** Sends `result-ack` for a task on the newest connection. */
  ackResult(taskId: string): void {
    this.resultAcks.push(taskId);
    this.send({ type: "result-ack", taskId });
  }

  /** Tells the agent to stop a task. */
  cancel(taskId: string, reason = "the job was cancelled"): void {
    this.send({ type: "cancel", taskId, reason });
  }

  /** Tells the agent a task is not its own, as the service answers a message about someone else's task. */
  unknownTask(taskId: string, message = `task ${taskId} is not held by this session`): void {
    this.send({ type: "error", code: "unknown-task", message, fatal: false, taskId });
  }

  /** The types of what the agent sent on one connection, in order. */
  types(connection: number): string[] {
    return (this.connections[connection]?.received ?? []).map((m) => (m as { type?: string }).type ?? "(invalid)");
  }

  /** `pause` messages received, on any connection. */
  pauses(): AgentMessage[] {
    return this.messages().filter((m) => m.type === "pause");
  }

  /** `goodbye` messages received, on any connection. */
  goodbyes(): AgentMessage[] {
    return this.messages().filter((m) => m.type === "goodbye");
  }

  /** Acknowledges, on the newest connection, every batch of `taskId` received and not yet acknowledged. */
  ackPending(taskId: string): void {
    for (const seq of new Set(this.batches(taskId).map((b) => b.seq))) {
      if (!this.acked.has(`${taskId}/${seq}`)) this.ack(taskId, seq);
    }
  }

  /** Every `evaluation-events` batch of a task as received (duplicates included). */
  batches(taskId: string): EvaluationEvents[] {
    return this.taskMessages(taskId).filter((m): m is EvaluationEvents => m.type === "evaluation-events");
  }

  /** The evaluation as the service assembles it: batches deduplicated by seq, in seq order. */
  evaluation(taskId: string): { events: EvaluationEvent[]; seqs: number[]; done: EvaluationDone | undefined } {
    const bySeq = new Map<number, EvaluationEvents>();
    for (const batch of this.batches(taskId)) bySeq.set(batch.seq, batch);
    const seqs = [...bySeq.keys()].sort((a, b) => a - b);
    const done = this.taskMessages(taskId).find((m): m is EvaluationDone => m.type === "evaluation-done");
    return { events: seqs.flatMap((seq) => bySeq.get(seq)!.events), seqs, done };
  }

  private readonly acked = new Set<string>();

  private ack(taskId: string, seq: number): void {
    this.acked.add(`${taskId}/${seq}`);
    this.send({ type: "ack", taskId, seq });
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
      frames: [],
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
      connection.frames.push(text);
      if (parsed.success && parsed.data.type === "hello") {
        this.hellos.push(parsed.data);
        if (this.options.onHello) this.options.onHello(connection, parsed.data);
        else connection.welcome();
      } else if (parsed.success && parsed.data.type === "heartbeat" && this.options.ackHeartbeats !== false) {
        ws.send(JSON.stringify({ type: "heartbeat-ack", sentAt: parsed.data.sentAt }));
      } else if (parsed.success && parsed.data.type === "evaluation-events" && this.ackBatches) {
        this.acked.add(`${parsed.data.taskId}/${parsed.data.seq}`);
        ws.send(JSON.stringify({ type: "ack", taskId: parsed.data.taskId, seq: parsed.data.seq }));
      } else if (parsed.success && (parsed.data.type === "build-result" || parsed.data.type === "evaluation-done") && this.ackResults) {
        this.resultAcks.push(parsed.data.taskId);
        ws.send(JSON.stringify({ type: "result-ack", taskId: parsed.data.taskId }));
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
