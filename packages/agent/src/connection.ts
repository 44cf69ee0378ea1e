/**
 * One WebSocket connection to the service, from upgrade to close: hello → welcome, then
 * heartbeats, tasks in and task messages out. It never reconnects itself; it ends with why it
 * ended and the agent's lifecycle (`agent-machine.ts`) decides. (The agent's *session*, which outlives connections, is
 * `session-credential.ts`.)
 */
import WebSocket from "ws";
import {
  type AgentMessage,
  type CacheUploadResult,
  type CacheUploadUrls,
  type CancelTask,
  type ErrorMessage,
  type Heartbeat,
  type HeartbeatAck,
  type Hello,
  MAX_MESSAGE_BYTES,
  NIMBUS_VERSION,
  PROTOCOL_VERSION,
  type ResultAck,
  type StreamAck,
  type Welcome,
} from "@nimbus/protocol";
import type { Clock, TimerHandle } from "./clock.ts";
import { AgentFatalError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { TaskMessage } from "./tasks/task-kind.ts";
import { decodeServiceMessage, encodeAgentMessage } from "./wire.ts";

export interface ConnectionHooks {
  welcome(welcome: Welcome): void;
  heartbeat(heartbeat: Heartbeat): void;
  heartbeatAck(ack: HeartbeatAck): void;
  /** Every error message; returns true when it logged a non-fatal one itself. */
  serviceError(error: ErrorMessage): boolean;
  /** A task, or an ack of one of a task's batches or of its result message. */
  task(message: TaskMessage | StreamAck | ResultAck): void;
  cancel(message: CancelTask): void;
  /** The answer to an upload request to the built-in cache. */
  cacheReply(message: CacheUploadUrls | CacheUploadResult): void;
}

export interface ConnectionOptions {
  url: string;
  token: string;
  /** Named in the message when the token is refused. */
  tokenPath: string;
  /** Named in the message when the service refuses the session. */
  sessionPath: string;
  hello: Hello;
  /** The tasks the agent holds now, as many as a frame carries (what `hello` lists). */
  heldTasks(): readonly string[];
  /** The agent's own interval; the service's, if smaller, wins. */
  heartbeatIntervalMs: number;
  /** Upgrade plus hello → welcome must finish within this. */
  welcomeTimeoutMs: number;
  log: Logger;
  clock: Clock;
  hooks: ConnectionHooks;
}

export type ConnectionEnd =
  | {
      kind: "closed";
      /** WebSocket close code; 1006 when the socket died or never opened. */
      code: number;
      reason: string;
      welcomed: boolean;
      /** What went wrong, when something did (refused upgrade, heartbeat timeout, socket error). */
      problem: string | undefined;
    }
  | { kind: "fatal"; error: AgentFatalError };

/** After close(), a service that never answers the close frame must not hold up a stop. */
const CLOSE_GRACE_MS = 2_000;

export class Connection {
  readonly ended: Promise<ConnectionEnd>;
  private resolveEnded!: (end: ConnectionEnd) => void;
  private readonly ws: WebSocket;
  private welcomeMessage: Welcome | undefined;
  private fatal: AgentFatalError | undefined;
  private problem: string | undefined;
  private refusedStatus: number | undefined;
  private welcomeTimer: TimerHandle | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private ackDeadline: TimerHandle | undefined;
  private closeTimer: TimerHandle | undefined;

  constructor(private readonly options: ConnectionOptions) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.ws = new WebSocket(options.url, {
      headers: {
        Authorization: `Bearer ${options.token}`,
        "User-Agent": `nimbus-agent/${NIMBUS_VERSION}`,
      },
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: options.welcomeTimeoutMs,
    });
    this.ws.on("unexpected-response", (_request, response) => {
      // Handling this event makes aborting ours: record the status, then drop the attempt.
      this.refusedStatus = response.statusCode;
      this.problem = `the service refused the connection with HTTP ${response.statusCode}`;
      response.resume();
      this.ws.terminate();
    });
    this.ws.on("open", () => this.onOpen());
    this.ws.on("message", (data) => this.onMessage(rawText(data)));
    this.ws.on("error", (err: NodeJS.ErrnoException) => {
      this.problem ??= err.code ?? err.message;
    });
    this.ws.on("close", (code, reason) => this.onClose(code, reason.toString("utf8")));
  }

  /** True between the welcome and the close. */
  get connected(): boolean {
    return this.welcomeMessage !== undefined && this.ws.readyState === WebSocket.OPEN;
  }

  get connectionId(): string | undefined {
    return this.welcomeMessage?.connectionId;
  }

  /** Ends the connection; `ended` settles once the socket is closed. */
  close(code = 1000, reason = "agent stopping"): void {
    this.clearTimers();
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    } else if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(code, reason);
      this.closeTimer ??= this.options.clock.setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    }
  }

  /** Gives up on the connection at once; it ends with `problem` as its reason. */
  drop(problem: string): void {
    this.problem = problem;
    this.options.log("warn", `${problem}; dropping connection ${this.connectionId ?? ""}`.trimEnd());
    this.clearTimers();
    this.ws.terminate();
  }

  private onOpen(): void {
    this.send(this.options.hello);
    this.welcomeTimer = this.options.clock.setTimeout(() => {
      this.problem = `no welcome within ${this.options.welcomeTimeoutMs / 1000} s after hello`;
      this.ws.terminate();
    }, this.options.welcomeTimeoutMs);
  }

  private onMessage(text: string): void {
    const decoded = decodeServiceMessage(text);
    if (!decoded.ok) {
      this.options.log("warn", decoded.problem);
      return;
    }
    const message = decoded.message;
    switch (message.type) {
      case "welcome":
        this.onWelcome(message);
        break;
      case "heartbeat-ack":
        this.options.clock.clearTimeout(this.ackDeadline);
        this.ackDeadline = undefined;
        this.options.hooks.heartbeatAck(message);
        break;
      case "error":
        this.onServiceError(message);
        break;
      case "cancel":
        this.options.hooks.cancel(message);
        break;
      case "cache-upload-urls":
      case "cache-upload-result":
        this.options.hooks.cacheReply(message);
        break;
      default:
        // A task of any kind, or an ack of one (the runner knows the kinds).
        this.options.hooks.task(message);
    }
  }

  private onWelcome(welcome: Welcome): void {
    if (this.welcomeMessage !== undefined) {
      this.options.log("warn", "ignored a second welcome on the same connection");
      return;
    }
    this.options.clock.clearTimeout(this.welcomeTimer);
    if (welcome.protocolVersion !== PROTOCOL_VERSION) {
      this.endFatally(
        new AgentFatalError(
          "protocol-version",
          `the service speaks agent protocol ${welcome.protocolVersion} (Nimbus ${welcome.serviceVersion}), this agent ${PROTOCOL_VERSION} (Nimbus ${NIMBUS_VERSION}) — run an agent of the service's Nimbus version`,
        ),
      );
      return;
    }
    this.welcomeMessage = welcome;
    const intervalMs = Math.min(welcome.heartbeatIntervalMs, this.options.heartbeatIntervalMs);
    this.scheduleHeartbeat(intervalMs);
    this.options.hooks.welcome(welcome);
  }

  private scheduleHeartbeat(intervalMs: number): void {
    this.heartbeatTimer = this.options.clock.setTimeout(() => {
      this.sendHeartbeat(intervalMs);
      this.scheduleHeartbeat(intervalMs);
    }, intervalMs);
  }

  private sendHeartbeat(intervalMs: number): void {
    // The tasks it holds go with it, so the service can send again a task whose message was lost.
    const heartbeat: Heartbeat = { type: "heartbeat", sentAt: new Date().toISOString(), tasksInProgress: [...this.options.heldTasks()] };
    this.send(heartbeat);
    this.options.hooks.heartbeat(heartbeat);
    // The deadline runs from the oldest unanswered heartbeat; any ack clears it.
    this.ackDeadline ??= this.options.clock.setTimeout(() => {
      this.problem = `no heartbeat-ack within ${(2 * intervalMs) / 1000} s`;
      this.options.log("warn", `${this.problem}; dropping connection ${this.connectionId ?? ""}`.trimEnd());
      this.ws.terminate();
    }, 2 * intervalMs);
  }

  private onServiceError(error: ErrorMessage): void {
    const logged = this.options.hooks.serviceError(error);
    if (!error.fatal) {
      if (!logged) this.options.log("warn", `the service reported ${error.code}: ${error.message}`);
      return;
    }
    this.endFatally(
      error.code === "protocol-version"
        ? new AgentFatalError(
            "protocol-version",
            `the service refused this agent's protocol: ${error.message} — run an agent of the service's Nimbus version (this one is ${NIMBUS_VERSION}, protocol ${PROTOCOL_VERSION})`,
          )
        : error.code === "session-refused"
          ? new AgentFatalError(
              "session-refused",
              `the service refused this agent's session: ${error.message} — if ${this.options.sessionPath} was copied from another agent, or the service lost it, delete that file and start the agent again`,
            )
          : new AgentFatalError(
            "service-refused",
            `the service ended the session with a fatal ${error.code} error: ${error.message} — this agent and the service disagree; report it with this message`,
          ),
    );
  }

  private endFatally(error: AgentFatalError): void {
    this.fatal ??= error;
    this.close(1000, "fatal error");
  }

  /**
   * False when the socket is not open (the caller keeps the message for the next connection).
   * An invalid or oversized message is a bug: logged and dropped, never sent.
   */
  send(message: AgentMessage): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    let text: string;
    try {
      text = encodeAgentMessage(message);
    } catch (err) {
      this.options.log("error", `not sent: ${(err as Error).message}`);
      return true;
    }
    // A failed send shows up as a close, handled there.
    this.ws.send(text, () => {});
    return true;
  }

  /**
   * Sends and resolves once the frame is written to the socket (true), or false when it could
   * not be: the socket is not open, or it was not written within `timeoutMs`.
   */
  sendFlushed(message: AgentMessage, timeoutMs: number): Promise<boolean> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve(false);
    let text: string;
    try {
      text = encodeAgentMessage(message);
    } catch (err) {
      this.options.log("error", `not sent: ${(err as Error).message}`);
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const timer = this.options.clock.setTimeout(() => resolve(false), timeoutMs);
      this.ws.send(text, (err) => {
        this.options.clock.clearTimeout(timer);
        resolve(err === undefined || err === null);
      });
    });
  }

  private onClose(code: number, reason: string): void {
    this.clearTimers();
    this.options.clock.clearTimeout(this.closeTimer);
    if (this.refusedStatus === 401 || this.refusedStatus === 403) {
      this.fatal ??= new AgentFatalError(
        "token-refused",
        `cluster join token refused (HTTP ${this.refusedStatus}) — create a new one with \`nimbus token create\` and write it to ${this.options.tokenPath}`,
      );
    }
    this.resolveEnded(
      this.fatal !== undefined
        ? { kind: "fatal", error: this.fatal }
        : { kind: "closed", code, reason, welcomed: this.welcomeMessage !== undefined, problem: this.problem },
    );
  }

  private clearTimers(): void {
    const { clock } = this.options;
    clock.clearTimeout(this.welcomeTimer);
    clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    clock.clearTimeout(this.ackDeadline);
    this.ackDeadline = undefined;
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
