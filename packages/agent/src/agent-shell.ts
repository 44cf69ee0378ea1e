/**
 * The imperative half of the agent: it feeds `agent-machine.ts` what happens — service-info
 * answers, welcomes, closed sockets, timers, task changes, `stop()` — and carries out the
 * effects the machine returns, with the real socket, timers and task runner.
 */
import type { EventEmitter } from "node:events";
import { type CacheUploadResult, type CacheUploadUrls, type Hello, NIMBUS_VERSION, PROTOCOL_VERSION, type Welcome } from "@nimbus/protocol";
import type { AgentEventMap, AgentExit, AgentNotice } from "./agent-events.ts";
import { type AgentEffect, type AgentEvent, type AgentInput, type AgentState, initialAgentState, type MachineSettings, step, type TimerName } from "./agent-machine.ts";
import type { Backoff } from "./backoff.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { ShutdownMode } from "./config.ts";
import { Connection, type ConnectionHooks } from "./connection.ts";
import { AgentFatalError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { Outbox } from "./outbox.ts";
import { agentSocketUrl, fetchServiceInfo, ServiceInfoUnavailable } from "./service-info.ts";
import type { TaskRunner } from "./task-runner.ts";

/** How long a `goodbye` may take to be written to the socket. */
const GOODBYE_FLUSH_MS = 2_000;
/** How long service-info may take to answer. */
const SERVICE_INFO_TIMEOUT_MS = 10_000;

export interface AgentShellParts {
  apiBaseUrl: string;
  settings: MachineSettings;
  /** What the connection needs besides its URL, hello and hooks. */
  connection: { token: string; tokenPath: string; sessionPath: string; heartbeatIntervalMs: number; welcomeTimeoutMs: number };
  hello(): Hello;
  runner: TaskRunner;
  outbox: Outbox;
  backoff: Backoff;
  clock: Clock;
  log: Logger;
  events: EventEmitter<AgentEventMap>;
  fetch: typeof fetch | undefined;
  /** How long to wait for killed tasks to end. */
  taskStopTimeoutMs: number;
  /** Requests to the built-in cache: told of each welcome (to send again what was not answered) and given the answers. */
  cache?: { welcomed(welcome: Welcome): void; reply(message: CacheUploadUrls | CacheUploadResult): void };
}

export class AgentShell {
  readonly exited: Promise<AgentExit>;
  private state: AgentState = initialAgentState();
  private readonly queue: AgentEvent[] = [];
  private dispatching = false;
  private connection: Connection | undefined;
  private finding: AbortController | undefined;
  private readonly timers = new Map<TimerName, TimerHandle>();
  private resolveExited!: (exit: AgentExit) => void;

  constructor(private readonly parts: AgentShellParts) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  /** Welcomed and the socket open. */
  get connected(): boolean {
    return this.connection?.connected ?? false;
  }

  get connectionId(): string | undefined {
    return this.connection?.connected ? this.connection.connectionId : undefined;
  }

  get shuttingDown(): ShutdownMode | undefined {
    return this.state.mode;
  }

  start(): void {
    this.dispatch({ type: "start" });
  }

  stop(mode: ShutdownMode): void {
    this.dispatch({ type: "stop", mode });
  }

  tasksChanged(): void {
    const { runner } = this.parts;
    this.dispatch({ type: "tasks-changed", running: runner.inProgress(), unacked: runner.results.ids() });
  }

  /** After a message awaiting an ack was sent (`progressed` false) or one was acknowledged (true). */
  acksChanged(progressed: boolean): void {
    this.dispatch({ type: "acks-changed", outstanding: this.parts.runner.outstanding(), progressed });
  }

  /** Runs events one at a time, in order: an effect that causes an event queues it. */
  private dispatch(input: AgentInput): void {
    this.queue.push({ ...input, at: this.parts.clock.now() });
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let event = this.queue.shift(); event !== undefined; event = this.queue.shift()) {
        const next = step(this.state, event, this.parts.settings);
        this.state = next.state;
        for (const effect of next.effects) {
          try {
            this.perform(effect);
          } catch (err) {
            this.crashed(err);
          }
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  private crashed(err: unknown): void {
    const message = `the agent failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`;
    this.dispatch({ type: "crashed", error: new AgentFatalError("internal", message) });
  }

  private perform(effect: AgentEffect): void {
    const { runner, outbox, log, clock } = this.parts;
    switch (effect.type) {
      case "log":
        log(effect.level, effect.message);
        return;
      case "emit":
        this.emit(effect.notice);
        return;
      case "find-service":
        this.findService();
        return;
      case "stop-finding-service":
        this.finding?.abort();
        return;
      case "connect":
        this.connect(effect.url);
        return;
      case "send":
        this.connection?.send(effect.message);
        return;
      case "send-backlog":
        runner.resendUnacked();
        outbox.flush();
        runner.resendResults();
        return;
      case "resend-results":
        runner.resendResults();
        return;
      case "reset-backoff":
        this.parts.backoff.reset();
        return;
      case "start-timer": {
        this.cancelTimer(effect.timer);
        const timer = effect.timer;
        this.timers.set(
          timer,
          clock.setTimeout(() => {
            this.timers.delete(timer);
            this.dispatch({ type: "timer", timer });
          }, effect.ms),
        );
        return;
      }
      case "cancel-timer":
        this.cancelTimer(effect.timer);
        return;
      case "pause-tasks":
        runner.pause();
        return;
      case "stop-tasks":
        runner.abandonAll("handed back: the agent is leaving");
        void runner.settled(this.parts.taskStopTimeoutMs).then(() => this.dispatch({ type: "tasks-stopped" }));
        return;
      case "write-goodbye": {
        const connection = this.connection;
        const written = connection?.sendFlushed({ type: "goodbye" }, GOODBYE_FLUSH_MS) ?? Promise.resolve(false);
        void written.then((ok) => {
          if (ok) connection?.close(1000, "agent leaving");
          this.dispatch({ type: "goodbye-written", ok });
        });
        return;
      }
      case "close-connection":
        this.connection?.close(1000, "agent leaving");
        return;
      case "drop-connection":
        this.connection?.drop(effect.problem);
        return;
      case "exit":
        void this.exit(effect.exit);
        return;
    }
  }

  private emit(notice: AgentNotice): void {
    const { events } = this.parts;
    // EventEmitter throws an "error" nobody listens to; the log already has it.
    if (notice.name === "error" && events.listenerCount("error") === 0) return;
    (events.emit as (name: string, value: unknown) => boolean)(notice.name, notice.value);
  }

  private cancelTimer(timer: TimerName): void {
    const handle = this.timers.get(timer);
    if (handle === undefined) return;
    this.parts.clock.clearTimeout(handle);
    this.timers.delete(timer);
  }

  private findService(): void {
    const { apiBaseUrl, backoff } = this.parts;
    const finding = new AbortController();
    this.finding = finding;
    fetchServiceInfo(apiBaseUrl, this.parts.fetch, SERVICE_INFO_TIMEOUT_MS, finding.signal)
      .then((service) => {
        if (service.protocolVersion !== PROTOCOL_VERSION) {
          const error = new AgentFatalError(
            "protocol-version",
            `the service at ${apiBaseUrl} speaks agent protocol ${service.protocolVersion} (Nimbus ${service.serviceVersion}), ` +
              `this agent ${PROTOCOL_VERSION} (Nimbus ${NIMBUS_VERSION}) — run an agent of the service's Nimbus version`,
          );
          this.dispatch({ type: "service-incompatible", error });
          return;
        }
        this.dispatch({ type: "service-found", url: agentSocketUrl(service, apiBaseUrl) });
      })
      .catch((err: unknown) => {
        if (err instanceof ServiceInfoUnavailable) {
          this.dispatch({ type: "service-unavailable", problem: err.message, retryInMs: backoff.next() });
        } else {
          this.crashed(err);
        }
      });
  }

  private connect(url: string): void {
    const { runner, outbox, log, clock } = this.parts;
    const hooks: ConnectionHooks = {
      welcome: (welcome) => {
        this.dispatch({ type: "welcomed", welcome });
        this.parts.cache?.welcomed(welcome);
      },
      heartbeat: (heartbeat) => {
        log("debug", "heartbeat sent");
        this.parts.events.emit("heartbeat", heartbeat);
      },
      heartbeatAck: (ack) => this.parts.events.emit("heartbeat-ack", ack),
      // A fatal one ends the connection and is reported once, by the machine.
      serviceError: (error) => {
        if (error.fatal) return false;
        this.emit({ name: "error", value: { fatal: false, code: error.code, message: error.message } });
        if (error.code !== "unknown-task" || error.taskId === undefined) return false;
        // The service does not hold this task for this agent (another agent has it, or its
        // job is gone): stop it and forget what is left to send for it.
        const known = runner.cancel(error.taskId, `the service says it is not this agent's: ${error.message}`);
        log(
          known ? "warn" : "info",
          known
            ? `task ${error.taskId} dropped: the service says it is not this agent's (${error.message})`
            : `the service reported unknown-task for ${error.taskId}, which this agent no longer has: ${error.message}`,
        );
        return true;
      },
      task: (message) => {
        runner.handle(message);
        if (message.type === "result-ack" && message.askAgainMs !== undefined) this.dispatch({ type: "ask-again", ms: message.askAgainMs });
      },
      cacheReply: (message) => this.parts.cache?.reply(message),
      cancel: (message) => {
        const known = runner.cancel(message.taskId, `cancelled by the service: ${message.reason}`);
        if (known) log("info", `task ${message.taskId} cancelled by the service: ${message.reason}`);
        else log("debug", `ignored a cancel of task ${message.taskId}, which this agent does not have (${message.reason})`);
      },
    };
    const connection = new Connection({
      url,
      ...this.parts.connection,
      hello: this.parts.hello(),
      heldTasks: () => this.parts.hello().tasksInProgress,
      log,
      clock,
      hooks,
    });
    this.connection = connection;
    outbox.attach(connection);
    void connection.ended.then((end) => {
      // The back-off's next delay, used only if the machine retries.
      this.dispatch({ type: "connection-ended", end, retryInMs: end.kind === "closed" ? this.parts.backoff.next() : 0 });
    });
  }

  private async exit(exit: AgentExit): Promise<void> {
    // After a fatal error too: nothing a task does can reach the service any more.
    await this.parts.runner.stop(this.parts.taskStopTimeoutMs);
    this.connection = undefined;
    this.parts.outbox.attach(undefined);
    this.parts.events.emit("exit", exit);
    this.resolveExited(exit);
  }
}
