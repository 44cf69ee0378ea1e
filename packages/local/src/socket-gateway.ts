/**
 * The agents' WebSocket API, behaving toward clients and handlers like API Gateway:
 * `$connect` decides whether the upgrade succeeds, each text message becomes a `$default`
 * invocation, `$disconnect` follows a close (best-effort), and the platform limits apply.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { CONNECTION_LIFETIME_MS, IDLE_TIMEOUT_MS, MAX_MESSAGE_BYTES } from "../../protocol/src/limits.ts";
import type { SocketEvent, SocketRequestContext, SocketResult } from "@nimbus/service/socket-events";
import { gatewayId, requestTime, sourceIp } from "./api-gateway-format.ts";
import type { FaultInjector } from "./faults.ts";
import { describeError } from "./handlers.ts";

export interface SocketRoutes {
  $connect: string;
  $disconnect: string;
  $default: string;
}

export interface SocketGatewayOptions {
  /** Handler spec per route key. */
  routes: SocketRoutes;
  invoke: (spec: string, event: SocketEvent) => Promise<unknown>;
  log: (line: string) => void;
  /** API Gateway closes every connection after this long (default 2 h). */
  connectionLifetimeMs?: number;
  /** ... and any connection without a message in either direction for this long (default 10 min). */
  idleTimeoutMs?: number;
  stage?: string;
  apiId?: string;
  /** A chaos run's fault injector: it may deliver a frame to `$default` twice. */
  faults?: FaultInjector;
}

/** The connection does not exist or is no longer open: the management API's `GoneException`. */
export class ConnectionGoneError extends Error {
  override name = "ConnectionGoneError";
  constructor(readonly connectionId: string) {
    super(`connection ${connectionId} is gone`);
  }
}

export interface ConnectionInfo {
  connectedAt: Date;
  lastActiveAt: Date;
  sourceIp: string;
  userAgent: string;
}

interface Connection {
  id: string;
  ws: WebSocket;
  connectedAt: number;
  lastActiveAt: number;
  sourceIp: string;
  userAgent: string;
  domainName: string;
  lifetimeTimer: NodeJS.Timeout;
  idleTimer: NodeJS.Timeout;
  /** Set when the gateway itself closes the connection, reported to `$disconnect`. */
  closeCode?: number;
  closeReason?: string;
  /** False after dropConnection: the socket dies without `$disconnect`, as AWS may do. */
  notifyDisconnect: boolean;
}

/** Close codes ws sends when it rejects a frame (by ws error code); others are protocol errors, 1002. */
const protocolErrorCloseCodes: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 1009,
  WS_ERR_INVALID_UTF8: 1007,
};

/** Close code and reason API Gateway uses when a limit ends a connection. */
const GOING_AWAY = { code: 1001, reason: "Going away" } as const;

export class SocketGateway {
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, Connection>();
  /** Headers `$connect` returned, added to the 101 response of that upgrade. */
  private readonly upgradeHeaders = new WeakMap<IncomingMessage, Record<string, string>>();
  /** Upgrades waiting on `$connect`; cut when the gateway shuts down. */
  private readonly pendingUpgrades = new Set<Duplex>();
  private shuttingDown = false;
  private readonly lifetimeMs: number;
  private readonly idleMs: number;
  private readonly stage: string;
  private readonly apiId: string;

  constructor(private readonly options: SocketGatewayOptions) {
    this.lifetimeMs = options.connectionLifetimeMs ?? CONNECTION_LIFETIME_MS;
    this.idleMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.stage = options.stage ?? "local";
    this.apiId = options.apiId ?? "local";
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_MESSAGE_BYTES,
      clientTracking: false,
      // A subprotocol is accepted only when `$connect` returns it, as with API Gateway.
      handleProtocols: (protocols, request) => {
        const chosen = headerValue(this.upgradeHeaders.get(request), "sec-websocket-protocol");
        return chosen !== undefined && protocols.has(chosen) ? chosen : false;
      },
    });
    this.wss.on("headers", (headers, request) => {
      for (const [name, value] of Object.entries(this.upgradeHeaders.get(request) ?? {})) {
        if (name.toLowerCase() !== "sec-websocket-protocol" && isSafeHeader(name, value)) {
          headers.push(`${name}: ${value}`);
        }
      }
    });
  }

  /** Handles an HTTP upgrade request for the socket path. */
  async handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A client going away mid-handshake must not crash the process.
    socket.on("error", () => {});
    if (this.shuttingDown) {
      writeRawResponse(socket, 503, { "Content-Type": "text/plain" }, "shutting down");
      return;
    }
    const problem = handshakeProblem(request);
    if (problem) {
      writeRawResponse(socket, 400, { "Content-Type": "text/plain" }, problem);
      return;
    }

    const now = new Date();
    const connectionId = gatewayId();
    const ip = sourceIp(request.socket.remoteAddress);
    const userAgent = request.headers["user-agent"] ?? "";
    const domainName = request.headers.host ?? "localhost";
    const { headers, multiValueHeaders } = requestHeaders(request, ip);
    const query = queryParameters(request.url ?? "");
    const event: SocketEvent = {
      requestContext: this.requestContext("$connect", "CONNECT", connectionId, now.getTime(), domainName, ip, userAgent),
      headers,
      multiValueHeaders,
      ...query,
      isBase64Encoded: false,
    };

    let result: SocketResult;
    this.pendingUpgrades.add(socket);
    try {
      result = connectResult(await this.options.invoke(this.options.routes.$connect, event));
    } catch (error) {
      this.options.log(`socket: $connect ${connectionId} failed: ${describeError(error)}`);
      result = { statusCode: 500, body: JSON.stringify({ message: "Internal server error" }) };
    } finally {
      this.pendingUpgrades.delete(socket);
    }
    if (result.statusCode < 200 || result.statusCode > 299) {
      writeRawResponse(socket, result.statusCode, result.headers ?? {}, result.body ?? "");
      return;
    }
    if (socket.destroyed) {
      // The client left while `$connect` ran; the handler may have recorded the connection.
      this.notifyDisconnect({ id: connectionId, connectedAt: now.getTime(), domainName, sourceIp: ip, userAgent }, 1006, "");
      return;
    }

    this.upgradeHeaders.set(request, result.headers ?? {});
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      this.open(ws, { id: connectionId, connectedAt: now.getTime(), domainName, sourceIp: ip, userAgent });
    });
  }

  /** Ids of the open connections. */
  connectionIds(): string[] {
    return [...this.connections.values()].filter((c) => c.ws.readyState === c.ws.OPEN).map((c) => c.id);
  }

  /** PostToConnection: `data` goes out as one text frame. */
  async post(connectionId: string, data: Buffer): Promise<void> {
    const connection = this.openConnection(connectionId);
    await new Promise<void>((resolve, reject) => {
      connection.ws.send(data, { binary: false }, (error) =>
        error ? reject(new ConnectionGoneError(connectionId)) : resolve(),
      );
    });
    this.touch(connection);
  }

  /** GetConnection. */
  describe(connectionId: string): ConnectionInfo {
    const c = this.openConnection(connectionId);
    return {
      connectedAt: new Date(c.connectedAt),
      lastActiveAt: new Date(c.lastActiveAt),
      sourceIp: c.sourceIp,
      userAgent: c.userAgent,
    };
  }

  /** DeleteConnection, and closes for tests: a close handshake, then `$disconnect`. */
  close(connectionId: string, code = 1000, reason = ""): void {
    const connection = this.openConnection(connectionId);
    connection.closeCode = code;
    connection.closeReason = reason;
    connection.ws.close(code, reason);
  }

  /** Kills the TCP connection without `$disconnect`, as when AWS loses that event. */
  drop(connectionId: string): void {
    const connection = this.connections.get(connectionId);
    if (!connection) throw new ConnectionGoneError(connectionId);
    connection.notifyDisconnect = false;
    this.forget(connection);
    connection.ws.terminate();
  }

  /**
   * Shuts the gateway: refuses new upgrades, closes every connection with `code` (their
   * `$disconnect` runs as usual) and waits up to `graceMs` for close handshakes before cutting the rest.
   */
  async closeAll(code: number, reason: string, graceMs: number): Promise<void> {
    this.shuttingDown = true;
    for (const socket of this.pendingUpgrades) socket.destroy();
    const closing = [...this.connections.values()].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === c.ws.CLOSED) return resolve();
          c.ws.once("close", () => resolve());
          if (c.ws.readyState === c.ws.OPEN) {
            c.closeCode = code;
            c.closeReason = reason;
            c.ws.close(code, reason);
          }
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(closing),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    for (const c of this.connections.values()) c.ws.terminate();
    // terminate() emits "close" soon after; waiting for it means every `$disconnect` has started.
    await Promise.all(closing);
  }

  private open(ws: WebSocket, base: Omit<Connection, "ws" | "lastActiveAt" | "lifetimeTimer" | "idleTimer" | "notifyDisconnect">): void {
    const connection: Connection = {
      ...base,
      ws,
      lastActiveAt: Date.now(),
      lifetimeTimer: setTimeout(() => this.expire(connection), this.lifetimeMs),
      idleTimer: setTimeout(() => this.expire(connection), this.idleMs),
      notifyDisconnect: true,
    };
    this.connections.set(connection.id, connection);
    ws.on("message", (data, isBinary) => this.receive(connection, data, isBinary));
    ws.on("error", (error: NodeJS.ErrnoException) => {
      // ws closes on a bad frame but then never reads the client's echo; remember why for `$disconnect`.
      connection.closeCode ??= protocolErrorCloseCodes[error.code ?? ""] ?? 1002;
      connection.closeReason ??= error.message;
      this.options.log(`socket: ${connection.id}: ${error.message}`);
    });
    ws.on("close", (code, reason) => {
      this.forget(connection);
      if (connection.notifyDisconnect) {
        this.notifyDisconnect(connection, connection.closeCode ?? code, connection.closeReason ?? reason.toString());
      }
    });
  }

  private receive(connection: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      // API Gateway accepts text frames only and hangs up on binary ones.
      connection.closeCode = 1003;
      connection.closeReason = "Binary frames are not supported";
      connection.ws.close(connection.closeCode, connection.closeReason);
      return;
    }
    this.touch(connection);
    const body = rawDataToBuffer(data).toString("utf8");
    const event: SocketEvent = {
      requestContext: {
        ...this.requestContext("$default", "MESSAGE", connection.id, connection.connectedAt, connection.domainName, connection.sourceIp, connection.userAgent),
        messageId: gatewayId(),
      },
      body,
      isBase64Encoded: false,
    };
    // Each message is its own invocation, concurrently with the others, as in AWS.
    this.deliver(connection, event);
    if (this.options.faults?.duplicateFrame()) this.deliver(connection, { ...event, requestContext: { ...event.requestContext, requestId: gatewayId() } });
  }

  private deliver(connection: Connection, event: SocketEvent): void {
    this.options.invoke(this.options.routes.$default, event).catch((error: unknown) => {
      const { requestId } = event.requestContext;
      this.options.log(`socket: $default ${connection.id} request ${requestId} failed: ${describeError(error)}`);
      if (connection.ws.readyState === connection.ws.OPEN) {
        connection.ws.send(JSON.stringify({ message: "Internal server error", connectionId: connection.id, requestId }));
        this.touch(connection);
      }
    });
  }

  private notifyDisconnect(
    c: Pick<Connection, "id" | "connectedAt" | "domainName" | "sourceIp" | "userAgent">,
    code: number,
    reason: string,
  ): void {
    const event: SocketEvent = {
      requestContext: {
        ...this.requestContext("$disconnect", "DISCONNECT", c.id, c.connectedAt, c.domainName, c.sourceIp, c.userAgent),
        disconnectStatusCode: code,
        disconnectReason: reason,
      },
      headers: { Host: c.domainName, "X-Forwarded-For": c.sourceIp },
      multiValueHeaders: { Host: [c.domainName], "X-Forwarded-For": [c.sourceIp] },
      isBase64Encoded: false,
    };
    this.options.invoke(this.options.routes.$disconnect, event).catch((error: unknown) => {
      this.options.log(`socket: $disconnect ${c.id} failed: ${describeError(error)}`);
    });
  }

  private expire(connection: Connection): void {
    if (connection.ws.readyState !== connection.ws.OPEN) return;
    connection.closeCode = GOING_AWAY.code;
    connection.closeReason = GOING_AWAY.reason;
    connection.ws.close(GOING_AWAY.code, GOING_AWAY.reason);
  }

  private touch(connection: Connection): void {
    connection.lastActiveAt = Date.now();
    connection.idleTimer.refresh();
  }

  private forget(connection: Connection): void {
    clearTimeout(connection.lifetimeTimer);
    clearTimeout(connection.idleTimer);
    this.connections.delete(connection.id);
  }

  private openConnection(connectionId: string): Connection {
    const connection = this.connections.get(connectionId);
    if (!connection || connection.ws.readyState !== connection.ws.OPEN) throw new ConnectionGoneError(connectionId);
    return connection;
  }

  private requestContext(
    routeKey: string,
    eventType: SocketRequestContext["eventType"],
    connectionId: string,
    connectedAt: number,
    domainName: string,
    ip: string,
    userAgent: string,
  ): SocketRequestContext {
    const now = new Date();
    const requestId = gatewayId();
    return {
      routeKey,
      eventType,
      connectionId,
      domainName,
      stage: this.stage,
      apiId: this.apiId,
      requestId,
      extendedRequestId: requestId,
      requestTime: requestTime(now),
      requestTimeEpoch: now.getTime(),
      connectedAt,
      messageDirection: "IN",
      identity: { sourceIp: ip, userAgent },
    };
  }
}

/** What `$connect` returned, read as API Gateway does: no status code means success. */
function connectResult(value: unknown): SocketResult {
  if (typeof value !== "object" || value === null || !("statusCode" in value)) return { statusCode: 200 };
  const result = value as Partial<SocketResult>;
  const statusCode = Number(result.statusCode);
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) {
    throw new Error(`$connect returned an invalid statusCode: ${String(result.statusCode)}`);
  }
  return {
    statusCode,
    body: typeof result.body === "string" ? result.body : undefined,
    headers: result.headers,
  };
}

/** Rejects what ws would reject anyway, before `$connect` sees a connection that cannot open. */
function handshakeProblem(request: IncomingMessage): string | undefined {
  if (request.method !== "GET") return "WebSocket upgrades use GET";
  if (request.headers.upgrade?.toLowerCase() !== "websocket") return "Upgrade header must be websocket";
  const key = request.headers["sec-websocket-key"];
  if (!key || !/^[+/0-9A-Za-z]{22}==$/.test(key)) return "missing or invalid Sec-WebSocket-Key";
  const version = request.headers["sec-websocket-version"];
  if (version !== "13" && version !== "8") return "unsupported Sec-WebSocket-Version";
  return undefined;
}

/** `$connect` headers as sent (API Gateway keeps their case) plus the ones it adds. */
function requestHeaders(request: IncomingMessage, ip: string) {
  const multiValueHeaders: Record<string, string[]> = {};
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    (multiValueHeaders[name] ??= []).push(raw[i + 1]!);
  }
  multiValueHeaders["X-Forwarded-For"] = [ip];
  multiValueHeaders["X-Forwarded-Proto"] = ["http"];
  multiValueHeaders["X-Forwarded-Port"] = [String(request.socket.localPort ?? "")];
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(multiValueHeaders)) headers[name] = values[values.length - 1]!;
  return { headers, multiValueHeaders };
}

/** API Gateway's v1-style query maps: last value wins in the single-value map. */
function queryParameters(url: string): Pick<SocketEvent, "queryStringParameters" | "multiValueQueryStringParameters"> {
  const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
  if (!query) return {};
  const multi: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(query)) (multi[name] ??= []).push(value);
  const single: Record<string, string> = {};
  for (const [name, values] of Object.entries(multi)) single[name] = values[values.length - 1]!;
  return { queryStringParameters: single, multiValueQueryStringParameters: multi };
}

function headerValue(headers: Record<string, string> | undefined, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** Handler-supplied headers go onto a raw socket: refuse anything that could split the response. */
function isSafeHeader(name: string, value: string): boolean {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) && !/[\r\n]/.test(String(value));
}

/** Answers an upgrade request with a plain HTTP response and hangs up: no socket is opened. */
function writeRawResponse(socket: Duplex, status: number, headers: Record<string, string>, body: string): void {
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}`];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower !== "content-length" && lower !== "connection" && isSafeHeader(name, value)) lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close", `Content-Length: ${Buffer.byteLength(body)}`);
  socket.once("finish", () => socket.destroy());
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

function rawDataToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
