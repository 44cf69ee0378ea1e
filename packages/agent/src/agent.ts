/**
 * The running agent: finds the socket through service-info, keeps one session open and
 * reconnects with back-off until stopped or until something retrying cannot fix; runs the
 * tasks the service pushes, which keep running across reconnects.
 */
import { EventEmitter } from "node:events";
import {
  type AgentInfo,
  type ErrorMessage,
  type Heartbeat,
  type HeartbeatAck,
  type Hello,
  NIMBUS_VERSION,
  PROTOCOL_VERSION,
  type Welcome,
} from "@nimbus/protocol";
import { buildAgentInfo } from "./agent-info.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import type { AgentConfig } from "./config.ts";
import { AgentConfigError, AgentFatalError, type FatalCode } from "./errors.ts";
import { readClusterJoinToken } from "./join-token.ts";
import { createLogger, type LogSink } from "./log.ts";
import { FRAME_BUDGET_BYTES, jsonBytes } from "./message-size.ts";
import { detectNix, type NixInfo } from "./nix-info.ts";
import { effectiveNixSettings, type NixEnvironment, nixOptionArgs } from "./nix-options.ts";
import { Outbox } from "./outbox.ts";
import { agentSocketUrl, fetchServiceInfo, ServiceInfoUnavailable } from "./service-info.ts";
import { Session } from "./session.ts";
import { type TaskFinished, TaskRunner, type TaskStarted } from "./task-runner.ts";
import { encodeAgentMessage, OutgoingMessageError } from "./wire.ts";

export interface StartAgentOptions {
  /** Where log lines go (stderr by default); only lines at the config's `logLevel` and above. */
  log?: LogSink;
  /** What Nix reports; `detectNix` runs when absent (with `effectiveNixSettings`). */
  nix?: NixInfo;
  /** Defaults to `os.hostname()`. */
  hostname?: string;
  fetch?: typeof fetch;
  backoff?: BackoffOptions;
  /** Upgrade plus hello → welcome; default 30 s (a cold Lambda can take a few seconds). */
  welcomeTimeoutMs?: number;
  /** How long `stop()` waits for killed tasks to end; default 5 s. */
  taskStopTimeoutMs?: number;
}

export interface Disconnected {
  /** WebSocket close code; absent when service-info could not be fetched. */
  code: number | undefined;
  reason: string;
  /** Whether this connection had been welcomed before it ended. */
  welcomed: boolean;
  problem: string | undefined;
  retryInMs: number;
}

export interface AgentErrorEvent {
  fatal: boolean;
  code: ErrorMessage["code"] | FatalCode;
  message: string;
}

export type AgentExit = { reason: "stopped" } | { reason: "fatal"; error: AgentFatalError };

export interface AgentEventMap {
  connecting: [{ url: string; attempt: number }];
  welcome: [Welcome];
  heartbeat: [Heartbeat];
  "heartbeat-ack": [HeartbeatAck];
  disconnected: [Disconnected];
  /** Non-fatal service errors and the fatal one; emitted only when someone listens. */
  error: [AgentErrorEvent];
  exit: [AgentExit];
  "task-started": [TaskStarted];
  "task-finished": [TaskFinished];
}

export interface RunningAgent {
  /** What `hello` tells the service. */
  readonly info: AgentInfo;
  readonly events: EventEmitter<AgentEventMap>;
  /** Settles (never rejects) once the agent is done: after `stop()` or a fatal error. */
  readonly exited: Promise<AgentExit>;
  /** Welcomed and the socket open. */
  connected(): boolean;
  connectionId(): string | undefined;
  /** Ids of the tasks running now. */
  tasksInProgress(): string[];
  /** Kills running tasks (SIGTERM to their Nix processes), closes the socket with 1000 and stops reconnecting. */
  stop(): Promise<void>;
}

/**
 * Reads the join token and works out the agent info (rejects if either fails), then connects
 * in the background. Errors from then on are retried or end `exited` with a fatal error.
 */
export async function startAgent(config: AgentConfig, options: StartAgentOptions = {}): Promise<RunningAgent> {
  const log = createLogger(config.logLevel, options.log);
  const token = await readClusterJoinToken(config.clusterJoinTokenPath);
  const nixSettings = effectiveNixSettings(config.nixSettings);
  const nix = options.nix ?? (await detectNix({ nixSettings }));
  const info = buildAgentInfo(config, nix, options.hostname);
  const events = new EventEmitter<AgentEventMap>();
  const outbox = new Outbox();
  const nixEnvironment: NixEnvironment = {
    optionArgs: nixOptionArgs(nixSettings),
    systems: info.systems,
    buildFeatures: [...new Set([...info.systemFeatures, ...info.mandatoryFeatures])],
  };
  const runner = new TaskRunner({
    workDirectory: config.workDirectory,
    nix: nixEnvironment,
    link: outbox,
    log,
    onStarted: (event) => events.emit("task-started", event),
    onFinished: (event) => events.emit("task-finished", event),
  });
  const hello = (): Hello => {
    const base: Hello = { type: "hello", protocolVersion: PROTOCOL_VERSION, agent: info, tasksInProgress: [] };
    // As many running task ids as the frame holds (1024 ids of 128 characters would not fit).
    let room = FRAME_BUDGET_BYTES - jsonBytes(base);
    const ids: string[] = [];
    for (const id of runner.inProgress().slice(0, 1024)) {
      room -= jsonBytes(id) + 1;
      if (room < 0) break;
      ids.push(id);
    }
    return { ...base, tasksInProgress: ids };
  };
  try {
    encodeAgentMessage(hello());
  } catch (err) {
    if (!(err instanceof OutgoingMessageError)) throw err;
    throw new AgentConfigError(`${config.source}: ${err.message} — make "labels" smaller`);
  }

  const backoff = new Backoff(options.backoff);
  const stopController = new AbortController();
  let session: Session | undefined;
  let wakeFromSleep: (() => void) | undefined;

  const emitError = (event: AgentErrorEvent) => {
    // EventEmitter throws an "error" nobody listens to; the log already has it.
    if (events.listenerCount("error") > 0) events.emit("error", event);
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeFromSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const giveUp = (error: AgentFatalError): AgentExit => {
    log("error", error.message);
    emitError({ fatal: true, code: error.code, message: error.message });
    return { reason: "fatal", error };
  };

  log(
    "info",
    `agent ${info.hostname} (Nimbus ${NIMBUS_VERSION}, Nix ${info.nixVersion}): systems ${info.systems.join(" ")}; ` +
      `features ${info.systemFeatures.join(" ") || "(none)"}; mandatory ${info.mandatoryFeatures.join(" ") || "(none)"}; ` +
      `${info.concurrentTasks} concurrent tasks`,
  );

  const run = async (): Promise<AgentExit> => {
    let attempt = 0;
    while (!stopController.signal.aborted) {
      attempt++;
      let url: string;
      try {
        const service = await fetchServiceInfo(config.apiBaseUrl, options.fetch, 10_000, stopController.signal);
        if (service.protocolVersion !== PROTOCOL_VERSION) {
          return giveUp(
            new AgentFatalError(
              "protocol-version",
              `the service at ${config.apiBaseUrl} speaks agent protocol ${service.protocolVersion} (Nimbus ${service.serviceVersion}), ` +
                `this agent ${PROTOCOL_VERSION} (Nimbus ${NIMBUS_VERSION}) — run an agent of the service's Nimbus version`,
            ),
          );
        }
        url = agentSocketUrl(service, config.apiBaseUrl);
      } catch (err) {
        if (stopController.signal.aborted) break;
        if (!(err instanceof ServiceInfoUnavailable)) throw err;
        const retryInMs = backoff.next();
        log("warn", `${err.message}; retrying in ${seconds(retryInMs)}`);
        events.emit("disconnected", { code: undefined, reason: "", welcomed: false, problem: err.message, retryInMs });
        await sleep(retryInMs);
        continue;
      }
      if (stopController.signal.aborted) break;

      events.emit("connecting", { url, attempt });
      log("debug", `connecting to ${url} (attempt ${attempt})`);
      const current = new Session({
        url,
        token,
        tokenPath: config.clusterJoinTokenPath,
        hello: hello(),
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        welcomeTimeoutMs: options.welcomeTimeoutMs ?? 30_000,
        log,
        hooks: {
          welcome: (welcome) => {
            backoff.reset();
            attempt = 0;
            const intervalMs = Math.min(welcome.heartbeatIntervalMs, config.heartbeatIntervalMs);
            log(
              "info",
              `connected to ${url} as ${welcome.connectionId} (service Nimbus ${welcome.serviceVersion}, heartbeat every ${seconds(intervalMs)})`,
            );
            events.emit("welcome", welcome);
            // The service decides what to send; then what waited for this connection goes out.
            current.send({ type: "request-work" });
            runner.resendUnacked();
            outbox.flush();
          },
          heartbeat: (heartbeat) => {
            log("debug", "heartbeat sent");
            events.emit("heartbeat", heartbeat);
          },
          heartbeatAck: (ack) => events.emit("heartbeat-ack", ack),
          // A fatal one ends the session and is reported once, by giveUp.
          serviceError: (error) => {
            if (!error.fatal) emitError({ fatal: false, code: error.code, message: error.message });
          },
          task: (message) => runner.handle(message),
        },
      });
      session = current;
      outbox.attach(current);
      const end = await current.ended;
      if (end.kind === "fatal") return giveUp(end.error);
      if (stopController.signal.aborted) break;

      const retryInMs = backoff.next();
      const id = current.connectionId;
      const why = end.problem ?? `closed with ${end.code}${end.reason ? ` "${end.reason}"` : ""}`;
      if (!end.welcomed) {
        log("warn", `cannot connect to ${url}: ${why}; retrying in ${seconds(retryInMs)}`);
      } else if (end.problem === undefined && (end.code === 1000 || end.code === 1001)) {
        // API Gateway ends every connection after 2 h (and idle ones after 10 min) with 1001: routine.
        log("info", `connection ${id} ${why} by the service; reconnecting in ${seconds(retryInMs)}`);
      } else {
        log("warn", `connection ${id} lost: ${why}; reconnecting in ${seconds(retryInMs)}`);
      }
      events.emit("disconnected", {
        code: end.code,
        reason: end.reason,
        welcomed: end.welcomed,
        problem: end.problem,
        retryInMs,
      });
      await sleep(retryInMs);
    }
    return { reason: "stopped" };
  };

  const exited = run()
    .catch((err: unknown) =>
      giveUp(new AgentFatalError("internal", `the agent failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`)),
    )
    .then(async (exit) => {
      // After a fatal error too: nothing a task does can reach the service any more.
      await runner.stop(options.taskStopTimeoutMs ?? 5_000);
      session = undefined;
      events.emit("exit", exit);
      return exit;
    });

  return {
    info,
    events,
    exited,
    connected: () => session?.connected ?? false,
    connectionId: () => (session?.connected ? session.connectionId : undefined),
    tasksInProgress: () => runner.inProgress(),
    stop: async () => {
      if (!stopController.signal.aborted) {
        log("info", "stopping");
        stopController.abort();
        // Still connected: a killed build's "exceptional" result can reach the service.
        await runner.stop(options.taskStopTimeoutMs ?? 5_000);
        session?.close(1000, "agent stopping");
        wakeFromSleep?.();
      }
      await exited;
    },
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
