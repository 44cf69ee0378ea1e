/**
 * The running agent: finds the socket through service-info, keeps one connection open and
 * reconnects with back-off until it leaves or until something retrying cannot fix; runs the
 * tasks the service pushes, which keep running across reconnects (the service keeps them for
 * the agent's session, see `session-credential.ts`). Leaving is a sequence: `pause`, let
 * tasks finish (or not), `goodbye`, close.
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
import type { AgentConfig, ShutdownMode } from "./config.ts";
import { Connection } from "./connection.ts";
import { AgentConfigError, AgentFatalError, type FatalCode } from "./errors.ts";
import { readClusterJoinToken } from "./join-token.ts";
import { createLogger, type LogSink } from "./log.ts";
import { FRAME_BUDGET_BYTES, jsonBytes } from "./message-size.ts";
import { detectNix, type NixInfo } from "./nix-info.ts";
import { effectiveNixSettings, type NixEnvironment, nixOptionArgs } from "./nix-options.ts";
import { Outbox } from "./outbox.ts";
import { agentSocketUrl, fetchServiceInfo, ServiceInfoUnavailable } from "./service-info.ts";
import { loadSessionCredential } from "./session-credential.ts";
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
  /** How long the agent waits for the tasks it kills to end; default 5 s. */
  taskStopTimeoutMs?: number;
}

export interface StopOptions {
  /**
   * `finish` lets running tasks end (and their results be acknowledged) before leaving, for up
   * to `shutdownTimeoutSeconds`; `hand-back` stops them at once. Default: the config's
   * `shutdown`. `hand-back` while a `finish` is under way switches to it at once.
   */
  mode?: ShutdownMode;
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

/** The steps of leaving, in order (`hand-back` is skipped when nothing is left to stop). */
export type ShutdownStep =
  | { step: "pause"; mode: ShutdownMode }
  | { step: "hand-back"; taskIds: string[]; why: "mode" | "timeout" | "requested" }
  | { step: "goodbye"; said: boolean };

export interface AgentEventMap {
  connecting: [{ url: string; attempt: number }];
  welcome: [Welcome];
  heartbeat: [Heartbeat];
  "heartbeat-ack": [HeartbeatAck];
  disconnected: [Disconnected];
  /** Non-fatal service errors and the fatal one; emitted only when someone listens. */
  error: [AgentErrorEvent];
  exit: [AgentExit];
  shutdown: [ShutdownStep];
  "task-started": [TaskStarted];
  "task-finished": [TaskFinished];
}

export interface RunningAgent {
  /** What `hello` tells the service. */
  readonly info: AgentInfo;
  /** The session id presented in every `hello` (the secret stays in the session file). */
  readonly sessionId: string;
  /** `<workDirectory>/session.json`. */
  readonly sessionPath: string;
  readonly events: EventEmitter<AgentEventMap>;
  /** Settles (never rejects) once the agent is done: after `stop()` or a fatal error. */
  readonly exited: Promise<AgentExit>;
  /** Welcomed and the socket open. */
  connected(): boolean;
  connectionId(): string | undefined;
  /** Ids of the tasks running now. */
  tasksInProgress(): string[];
  /** Ids of the tasks whose final message awaits the service's `result-ack`. */
  unacknowledgedResults(): string[];
  /** The shutdown under way, if any. */
  shuttingDown(): ShutdownMode | undefined;
  /**
   * Leaves as on SIGTERM: `pause`, then (`finish`) waits for running tasks and their
   * acknowledgements or (`hand-back`) stops them, then `goodbye`, close with 1000. Resolves
   * once the agent has exited; never hangs past the shutdown timeout and a few seconds.
   */
  stop(options?: StopOptions): Promise<void>;
}

/** How long a `goodbye` may take to be written to the socket. */
const GOODBYE_FLUSH_MS = 2_000;
/** How long a leaving agent that is disconnected keeps trying to reconnect to say goodbye. */
const GOODBYE_RECONNECT_MS = 10_000;

type Phase =
  /** Working normally. */
  | "running"
  /** Shutting down: paused, tasks may still run; reconnects go on. */
  | "pausing"
  /** Saying goodbye: on the next welcome, nothing but `goodbye`. */
  | "leaving"
  /** No more connections. */
  | "done";

/**
 * Reads the join token and the session (making it on first start), works out the agent info
 * (rejects if any of it fails), then connects in the background. Errors from then on are
 * retried or end `exited` with a fatal error.
 */
export async function startAgent(config: AgentConfig, options: StartAgentOptions = {}): Promise<RunningAgent> {
  const log = createLogger(config.logLevel, options.log);
  const token = await readClusterJoinToken(config.clusterJoinTokenPath);
  const session = await loadSessionCredential(config.workDirectory);
  const nixSettings = effectiveNixSettings(config.nixSettings);
  const nix = options.nix ?? (await detectNix({ nixSettings }));
  const info = buildAgentInfo(config, nix, options.hostname);
  const events = new EventEmitter<AgentEventMap>();
  const outbox = new Outbox();
  const taskStopTimeoutMs = options.taskStopTimeoutMs ?? 5_000;
  const nixEnvironment: NixEnvironment = {
    optionArgs: nixOptionArgs(nixSettings),
    systems: info.systems,
    buildFeatures: [...new Set([...info.systemFeatures, ...info.mandatoryFeatures])],
  };
  let phase: Phase = "running";
  /** A function, not `phase === "done"` inline: TypeScript would narrow `phase` across awaits. */
  const done = (): boolean => phase === "done";
  let whenIdle: (() => void) | undefined;
  const runner = new TaskRunner({
    workDirectory: config.workDirectory,
    nix: nixEnvironment,
    link: outbox,
    log,
    onStarted: (event) => events.emit("task-started", event),
    onFinished: (event) => events.emit("task-finished", event),
    onChange: () => {
      if (whenIdle !== undefined && runner.idle()) whenIdle();
    },
  });
  const hello = (): Hello => {
    const base: Hello = {
      type: "hello",
      protocolVersion: PROTOCOL_VERSION,
      agent: info,
      session: session.credential,
      tasksInProgress: [],
    };
    // As many task ids as the frame holds (1024 ids of 128 characters would not fit).
    let room = FRAME_BUDGET_BYTES - jsonBytes(base);
    const ids: string[] = [];
    for (const id of runner.held().slice(0, 1024)) {
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
  /** Aborted when the agent makes no more connections (service-info fetches stop with it). */
  const loopStop = new AbortController();
  let connection: Connection | undefined;
  let wakeFromSleep: (() => void) | undefined;
  let wakeOnWelcome: (() => void) | undefined;

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
  log("info", `session ${session.credential.id} (${session.created ? "new, written to" : "from"} ${session.path})`);
  if (session.warning !== undefined) log("warn", session.warning);

  const run = async (): Promise<AgentExit> => {
    let attempt = 0;
    while (!done()) {
      attempt++;
      let url: string;
      try {
        const service = await fetchServiceInfo(config.apiBaseUrl, options.fetch, 10_000, loopStop.signal);
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
        if (done()) break;
        if (!(err instanceof ServiceInfoUnavailable)) throw err;
        const retryInMs = backoff.next();
        log("warn", `${err.message}; retrying in ${seconds(retryInMs)}`);
        events.emit("disconnected", { code: undefined, reason: "", welcomed: false, problem: err.message, retryInMs });
        await sleep(retryInMs);
        continue;
      }
      if (done()) break;

      events.emit("connecting", { url, attempt });
      log("debug", `connecting to ${url} (attempt ${attempt})`);
      const current: Connection = new Connection({
        url,
        token,
        tokenPath: config.clusterJoinTokenPath,
        sessionPath: session.path,
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
            if (phase === "leaving") {
              // Results the service may still record; then the goodbye hands back the rest.
              runner.resendResults();
            } else {
              // The service decides what to send (nothing once paused); then what waited for
              // this connection: evaluation batches, queued log lines, final messages last.
              current.send(phase === "pausing" ? { type: "pause" } : { type: "request-work" });
              runner.resendUnacked();
              outbox.flush();
              runner.resendResults();
            }
            wakeOnWelcome?.();
          },
          heartbeat: (heartbeat) => {
            log("debug", "heartbeat sent");
            events.emit("heartbeat", heartbeat);
          },
          heartbeatAck: (ack) => events.emit("heartbeat-ack", ack),
          // A fatal one ends the connection and is reported once, by giveUp.
          serviceError: (error) => {
            if (error.fatal) return false;
            emitError({ fatal: false, code: error.code, message: error.message });
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
          task: (message) => runner.handle(message),
          cancel: (message) => {
            const known = runner.cancel(message.taskId, `cancelled by the service: ${message.reason}`);
            if (known) log("info", `task ${message.taskId} cancelled by the service: ${message.reason}`);
            else log("debug", `ignored a cancel of task ${message.taskId}, which this agent does not have (${message.reason})`);
          },
        },
      });
      connection = current;
      outbox.attach(current);
      const end = await current.ended;
      if (end.kind === "fatal") return giveUp(end.error);
      if (done()) break;

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

  let loopEnded = false;
  const loop = run()
    .catch((err: unknown) =>
      giveUp(new AgentFatalError("internal", `the agent failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`)),
    )
    .then((exit) => {
      loopEnded = true;
      phase = "done";
      return exit;
    });
  const exited = loop.then(async (exit) => {
    // After a fatal error too: nothing a task does can reach the service any more.
    await runner.stop(taskStopTimeoutMs);
    connection = undefined;
    outbox.attach(undefined);
    events.emit("exit", exit);
    return exit;
  });

  // ---- leaving ---------------------------------------------------------------------------

  let mode: ShutdownMode | undefined;
  let handBackNow: (() => void) | undefined;
  const handBackRequested = new Promise<"requested">((resolve) => (handBackNow = () => resolve("requested")));

  /** Waits for `promise`, at most until `deadline` (then "timeout"), or for the loop to end. */
  const raceDeadline = <T>(promise: Promise<T>, deadline: number): Promise<T | "timeout" | "ended"> => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      promise,
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now())))),
      loop.then(() => "ended" as const),
    ]).finally(() => clearTimeout(timer));
  };

  /** Sends `goodbye` on a welcomed connection, reconnecting for it while time allows. */
  const sayGoodbye = async (until: number): Promise<boolean> => {
    phase = "leaving";
    for (;;) {
      const current = connection;
      if (current?.connected) {
        if (await current.sendFlushed({ type: "goodbye" }, GOODBYE_FLUSH_MS)) {
          current.close(1000, "agent leaving");
          return true;
        }
      }
      if (loopEnded || Date.now() >= until) return false;
      if (!current?.connected) {
        log("info", `not connected: trying for ${seconds(until - Date.now())} to reconnect and say goodbye`);
        // Now, not after the rest of a back-off delay.
        wakeFromSleep?.();
      }
      const welcomed = new Promise<void>((resolve) => (wakeOnWelcome = resolve));
      await raceDeadline(welcomed, until);
      wakeOnWelcome = undefined;
    }
  };

  const shutdown = async (): Promise<void> => {
    const timeoutMs = config.shutdownTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    phase = "pausing";
    runner.pause();
    const paused = connection?.connected === true && connection.send({ type: "pause" });
    log("info", `shutting down (${mode}): ${paused ? "sent pause" : "pause goes out with the next welcome"}; the service sends no new work`);
    events.emit("shutdown", { step: "pause", mode: mode! });

    let why: "mode" | "timeout" | "requested" = "mode";
    if (mode === "finish" && !runner.idle()) {
      const running = runner.inProgress().length;
      const unacked = runner.results.ids().filter((id) => !runner.inProgress().includes(id)).length;
      const what = [
        ...(running > 0 ? [`${running} running task${running === 1 ? "" : "s"}`] : []),
        ...(unacked > 0 ? [`${unacked} unacknowledged result${unacked === 1 ? "" : "s"}`] : []),
      ];
      log("info", `waiting up to ${seconds(timeoutMs)} for ${what.join(" and ")} (signal again to hand them back now)`);
      const idle = new Promise<"idle">((resolve) => (whenIdle = () => resolve("idle")));
      const outcome = await raceDeadline(Promise.race([idle, handBackRequested]), deadline);
      whenIdle = undefined;
      if (outcome === "ended") return;
      if (outcome === "idle") log("info", "every task finished and its result was acknowledged");
      else if (outcome === "timeout") {
        why = "timeout";
        log("warn", `shutdown timeout (${seconds(timeoutMs)}) reached: handing back what is left`);
      } else why = "requested";
    }
    if (loopEnded) return;

    const abandoned = runner.abandonAll("handed back: the agent is leaving");
    const unacked = runner.results.ids();
    if (abandoned.length > 0) {
      log(
        "info",
        `stopping ${abandoned.length} running task${abandoned.length === 1 ? "" : "s"} (${abandoned.join(", ")}): the goodbye hands ${abandoned.length === 1 ? "it" : "them"} back`,
      );
      events.emit("shutdown", { step: "hand-back", taskIds: abandoned, why });
      await runner.settled(taskStopTimeoutMs);
    }
    if (unacked.length > 0) log("warn", `leaving with ${unacked.length} unacknowledged result${unacked.length === 1 ? "" : "s"} (${unacked.join(", ")}): the service hands those tasks back`);

    const said = await sayGoodbye(Date.now() + Math.max(0, Math.min(GOODBYE_RECONNECT_MS, deadline - Date.now())));
    if (said) log("info", "goodbye sent; closing the connection");
    else if (!loopEnded) {
      log("warn", "left without a goodbye (not connected): the service hands this session's tasks back when it gives the session up");
    }
    events.emit("shutdown", { step: "goodbye", said });
    phase = "done";
    loopStop.abort();
    wakeFromSleep?.();
    wakeOnWelcome?.();
    connection?.close(1000, "agent leaving");
  };

  let shutdownPromise: Promise<void> | undefined;
  const stop = async (stopOptions: StopOptions = {}): Promise<void> => {
    const requested = stopOptions.mode ?? config.shutdown;
    if (loopEnded) {
      // A fatal error ended it already.
    } else if (shutdownPromise === undefined) {
      mode = requested;
      shutdownPromise = shutdown().catch((err: unknown) => {
        log("error", `shutting down failed: ${err instanceof Error ? err.message : String(err)}`);
        phase = "done";
        loopStop.abort();
        wakeFromSleep?.();
        connection?.close(1000, "agent leaving");
      });
    } else if (requested === "hand-back" && mode === "finish" && phase === "pausing") {
      mode = "hand-back";
      log("info", "handing back the running tasks now");
      handBackNow?.();
    }
    await exited;
  };

  return {
    info,
    sessionId: session.credential.id,
    sessionPath: session.path,
    events,
    exited,
    connected: () => connection?.connected ?? false,
    connectionId: () => (connection?.connected ? connection.connectionId : undefined),
    tasksInProgress: () => runner.inProgress(),
    unacknowledgedResults: () => runner.results.ids(),
    shuttingDown: () => mode,
    stop,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
