/**
 * The agent's life as one pure function: `step(state, event)` → the next state and the effects
 * to carry out. No I/O and no timers here: `agent-shell.ts` turns what happens (service-info
 * answers, welcomes, closed sockets, timers, tasks, `stop()`) into events and performs the
 * effects. The behaviour is docs/agent.md's "Connecting, heartbeats, reconnecting" and
 * "Shutting down"; docs/architecture-agent.md draws the states.
 *
 * Two parts move together: the *connection* (finding the service, connecting, connected, backing off)
 * reconnects for as long as the agent lives; the *phase* (working, then the steps of leaving)
 * decides what a welcome is used for and when the connection is closed for good.
 */
import type { Pause, RequestWork, Welcome } from "@nimbus/protocol";
import type { AgentExit, AgentNotice, ShutdownStep } from "./agent-events.ts";
import type { ShutdownMode } from "./config.ts";
import type { ConnectionEnd } from "./connection.ts";
import type { AgentFatalError } from "./errors.ts";
import type { LogLevel } from "./log.ts";

/** How long a leaving agent that is disconnected keeps trying to reconnect to say goodbye. */
export const GOODBYE_RECONNECT_MS = 10_000;

export type Phase =
  /** Taking work. */
  | "working"
  /** Leaving with `finish`: paused, waiting for the running tasks and their result acks. */
  | "draining"
  /** Leaving: stopping the tasks still running (the goodbye hands them back). */
  | "handing-back"
  /** Leaving: on a welcomed connection, `goodbye` and nothing else. */
  | "saying-goodbye"
  /** Closing the last connection; no new one. */
  | "closing"
  /** Done; `exit` says why. */
  | "stopped";

export type ConnectionState =
  /** `GET /api/service-info` under way. */
  | { name: "finding-service" }
  /** The socket is opening, or open and `hello` awaits its `welcome`. */
  | { name: "connecting"; url: string }
  | { name: "connected"; url: string; connectionId: string }
  /** Waiting out the back-off before the next attempt. */
  | { name: "backing-off" }
  /** No connection, and none being made. */
  | { name: "down" };

export interface AgentState {
  phase: Phase;
  connection: ConnectionState;
  /** Attempts since the last welcome (the `connecting` event's `attempt`). */
  attempt: number;
  /** Set by the first stop; a `finish` may switch to `hand-back`. */
  mode: ShutdownMode | undefined;
  /** When `finish` stops waiting (the first stop's time plus the shutdown timeout). */
  deadline: number | undefined;
  /** Tasks running now, and tasks whose result awaits `result-ack`, as the runner last said. */
  running: readonly string[];
  unacked: readonly string[];
  /** Batches and results sent and not yet acknowledged, as the runner last said. */
  outstanding: number;
  /** While saying goodbye: a `goodbye` is being written; the time to say it is up. */
  goodbye: { writing: boolean; expired: boolean };
  /** Why the agent ends, once that is decided. */
  exit: AgentExit | undefined;
}

export interface MachineSettings {
  /** The configured heartbeat interval (the welcome's, if smaller, wins). */
  heartbeatIntervalMs: number;
  shutdownTimeoutMs: number;
  /** With messages outstanding and no ack for this long, the connection is dropped (and made again). */
  ackTimeoutMs: number;
}

export type TimerName = "retry" | "shutdown-deadline" | "goodbye-deadline" | "ack" | "ask-again";

/** What happened, as the shell reports it. */
export type AgentInput =
  | { type: "start" }
  | { type: "service-found"; url: string }
  /** service-info could not be had (or named no usable socket): retry after `retryInMs`. */
  | { type: "service-unavailable"; problem: string; retryInMs: number }
  /** The service speaks another protocol: retrying cannot help. */
  | { type: "service-incompatible"; error: AgentFatalError }
  | { type: "welcomed"; welcome: Welcome }
  /** A `result-ack` said the slot its result freed is empty: ask for work again after `ms` (docs/protocol.md, "Asking again"). */
  | { type: "ask-again"; ms: number }
  /** The connection ended, however; `retryInMs` is the back-off's next delay, should one be needed. */
  | { type: "connection-ended"; end: ConnectionEnd; retryInMs: number }
  | { type: "timer"; timer: TimerName }
  /** After any change to the running tasks or the unacknowledged results. */
  | { type: "tasks-changed"; running: readonly string[]; unacked: readonly string[] }
  /** Something awaiting an ack was sent (`progressed` false), acknowledged (true) or dropped. */
  | { type: "acks-changed"; outstanding: number; progressed: boolean }
  | { type: "stop"; mode: ShutdownMode }
  /** The tasks stopped by `hand-back-tasks` have ended (or stopped being waited for). */
  | { type: "tasks-stopped" }
  /** Whether the `goodbye` was written to the socket in time. */
  | { type: "goodbye-written"; ok: boolean }
  /** The shell itself failed: a bug. */
  | { type: "crashed"; error: AgentFatalError };

/** What happened, and `at` what time of the agent's clock. */
export type AgentEvent = AgentInput & { at: number };

/** What the shell is to do, in order. */
export type AgentEffect =
  | { type: "log"; level: LogLevel; message: string }
  | { type: "emit"; notice: AgentNotice }
  | { type: "find-service" }
  /** Abandon the service-info request under way. */
  | { type: "stop-finding-service" }
  | { type: "connect"; url: string }
  | { type: "send"; message: Pause | RequestWork }
  /** After a welcome: unacknowledged batches, then queued messages, then unacknowledged results. */
  | { type: "send-backlog" }
  /** After a welcome while saying goodbye: only the unacknowledged results (the service may still record them). */
  | { type: "resend-results" }
  | { type: "reset-backoff" }
  | { type: "start-timer"; timer: TimerName; ms: number }
  | { type: "cancel-timer"; timer: TimerName }
  /** Take no new task. */
  | { type: "pause-tasks" }
  /** Stop every running task; `tasks-stopped` follows once they have ended. */
  | { type: "stop-tasks" }
  /** Write `goodbye` on the connection; `goodbye-written` follows. */
  | { type: "write-goodbye" }
  | { type: "close-connection" }
  /** Give up on this connection (the service stopped answering): the usual reconnect follows. */
  | { type: "drop-connection"; problem: string }
  /** The end: stop what still runs and report `exit`. */
  | { type: "exit"; exit: AgentExit };

type Step = { state: AgentState; effects: AgentEffect[] };

export function initialAgentState(): AgentState {
  return {
    phase: "working",
    connection: { name: "down" },
    attempt: 0,
    mode: undefined,
    deadline: undefined,
    running: [],
    unacked: [],
    outstanding: 0,
    goodbye: { writing: false, expired: false },
    exit: undefined,
  };
}

export function step(state: AgentState, event: AgentEvent, settings: MachineSettings): Step {
  if (state.phase === "stopped") return { state, effects: [] };
  switch (event.type) {
    case "start":
      return state.connection.name === "down" ? findService(state) : { state, effects: [] };
    case "service-found":
      return serviceFound(state, event.url);
    case "service-unavailable":
      return serviceUnavailable(state, event.problem, event.retryInMs);
    case "service-incompatible":
    case "crashed":
      return fail({ ...state, connection: event.type === "crashed" ? state.connection : { name: "down" } }, event.error);
    case "welcomed":
      return welcomed(state, event.welcome, settings);
    case "ask-again":
      return askAgain(state, event.ms);
    case "connection-ended":
      return connectionEnded(state, event.end, event.retryInMs);
    case "timer":
      return timerFired(state, event.timer, event.at, settings);
    case "tasks-changed":
      return tasksChanged({ ...state, running: event.running, unacked: event.unacked }, event.at);
    case "acks-changed":
      return acksChanged(state, event.outstanding, event.progressed, settings);
    case "stop":
      return stopRequested(state, event.mode, event.at, settings);
    case "tasks-stopped":
      return state.phase === "handing-back" ? sayGoodbye(state, event.at) : { state, effects: [] };
    case "goodbye-written":
      return goodbyeWritten(state, event.ok);
  }
}

// ---- the connection ------------------------------------------------------------------------

function findService(state: AgentState): Step {
  return { state: { ...state, connection: { name: "finding-service" }, attempt: state.attempt + 1 }, effects: [{ type: "find-service" }] };
}

function serviceFound(state: AgentState, url: string): Step {
  if (state.connection.name !== "finding-service" || state.phase === "closing") return { state, effects: [] };
  return {
    state: { ...state, connection: { name: "connecting", url } },
    effects: [
      { type: "emit", notice: { name: "connecting", value: { url, attempt: state.attempt } } },
      log("debug", `connecting to ${url} (attempt ${state.attempt})`),
      { type: "connect", url },
    ],
  };
}

function serviceUnavailable(state: AgentState, problem: string, retryInMs: number): Step {
  if (state.connection.name !== "finding-service" || state.phase === "closing") return { state, effects: [] };
  return backOff(state, retryInMs, [
    log("warn", `${problem}; retrying in ${seconds(retryInMs)}`),
    { type: "emit", notice: { name: "disconnected", value: { code: undefined, reason: "", welcomed: false, problem, retryInMs } } },
  ]);
}

function welcomed(state: AgentState, welcome: Welcome, settings: MachineSettings): Step {
  if (state.connection.name !== "connecting") return { state, effects: [] };
  const connection: ConnectionState = { name: "connected", url: state.connection.url, connectionId: welcome.connectionId };
  const intervalMs = Math.min(welcome.heartbeatIntervalMs, settings.heartbeatIntervalMs);
  const effects: AgentEffect[] = [
    { type: "reset-backoff" },
    log(
      "info",
      `connected to ${connection.url} as ${welcome.connectionId} (service Nimbus ${welcome.serviceVersion}, heartbeat every ${seconds(intervalMs)})`,
    ),
    { type: "emit", notice: { name: "welcome", value: welcome } },
  ];
  const next: AgentState = { ...state, connection, attempt: 0 };
  switch (state.phase) {
    case "working":
      // The service decides what to send; then what waited for this connection.
      return {
        state: next,
        effects: [
          ...effects,
          { type: "send", message: { type: "request-work" } },
          { type: "send-backlog" },
          ...watchAcks(next, settings),
          ...(welcome.askAgainMs === undefined ? [] : askAgain(next, welcome.askAgainMs).effects),
        ],
      };
    case "draining":
    case "handing-back":
      // Paused on every connection while leaving: the service sends nothing new.
      return { state: next, effects: [...effects, { type: "send", message: { type: "pause" } }, { type: "send-backlog" }, ...watchAcks(next, settings)] };
    case "saying-goodbye":
      return writeGoodbye(next, [...effects, { type: "resend-results" }]);
    case "closing":
      return { state: next, effects: [...effects, { type: "close-connection" }] };
    case "stopped":
      return { state, effects: [] };
  }
}

function connectionEnded(state: AgentState, end: ConnectionEnd, retryInMs: number): Step {
  const connection = state.connection;
  if (connection.name !== "connecting" && connection.name !== "connected") return { state, effects: [] };
  const down: AgentState = { ...state, connection: { name: "down" } };
  if (end.kind === "fatal") return fail(down, end.error);
  if (state.phase === "closing") return stopped(down);

  const why = end.problem ?? `closed with ${end.code}${end.reason ? ` "${end.reason}"` : ""}`;
  let line: AgentEffect;
  if (connection.name === "connecting") {
    line = log("warn", `cannot connect to ${connection.url}: ${why}; retrying in ${seconds(retryInMs)}`);
  } else if (end.problem === undefined && (end.code === 1000 || end.code === 1001)) {
    // API Gateway ends every connection after 2 h (and idle ones after 10 min) with 1001: routine.
    line = log("info", `connection ${connection.connectionId} ${why} by the service; reconnecting in ${seconds(retryInMs)}`);
  } else {
    line = log("warn", `connection ${connection.connectionId} lost: ${why}; reconnecting in ${seconds(retryInMs)}`);
  }
  const disconnected: AgentEffect = {
    type: "emit",
    notice: { name: "disconnected", value: { code: end.code, reason: end.reason, welcomed: end.welcomed, problem: end.problem, retryInMs } },
  };
  return backOff(down, retryInMs, [{ type: "cancel-timer", timer: "ack" }, line, disconnected]);
}

function backOff(state: AgentState, retryInMs: number, effects: AgentEffect[]): Step {
  return {
    state: { ...state, connection: { name: "backing-off" } },
    effects: [...effects, { type: "start-timer", timer: "retry", ms: retryInMs }],
  };
}

function timerFired(state: AgentState, timer: TimerName, at: number, settings: MachineSettings): Step {
  switch (timer) {
    case "retry":
      return state.connection.name === "backing-off" && state.phase !== "closing" ? findService(state) : { state, effects: [] };
    case "shutdown-deadline":
      if (state.phase !== "draining") return { state, effects: [] };
      return handBack(state, "timeout", at, [
        log("warn", `shutdown timeout (${seconds(settings.shutdownTimeoutMs)}) reached: handing back what is left`),
      ]);
    case "goodbye-deadline":
      if (state.phase !== "saying-goodbye") return { state, effects: [] };
      if (state.goodbye.writing) return { state: { ...state, goodbye: { ...state.goodbye, expired: true } }, effects: [] };
      return leaveWithoutGoodbye(state);
    case "ask-again":
      // Only while taking work on a welcomed connection: a new welcome asks anyway.
      return state.phase === "working" && state.connection.name === "connected"
        ? { state, effects: [log("debug", "asking for work again"), { type: "send", message: { type: "request-work" } }] }
        : { state, effects: [] };
    case "ack":
      if (!acksWatched(state) || state.outstanding === 0) return { state, effects: [] };
      // A message the service never handled (a throttled or timed-out handler) is sent again
      // only on a new connection: make one now rather than when the gateway ends this one.
      return {
        state,
        effects: [
          {
            type: "drop-connection",
            problem: `no acknowledgement from the service for ${seconds(settings.ackTimeoutMs)} with ${plural(state.outstanding, "message")} waiting for one`,
          },
        ],
      };
  }
}

/**
 * The service may take a capability class for full for a short while after a look found no free
 * slot in it; an agent whose slot came free meanwhile asks again once this long after it was
 * told (a later telling restarts the wait: one ask covers both).
 */
function askAgain(state: AgentState, ms: number): Step {
  if (state.phase !== "working") return { state, effects: [] };
  return { state, effects: [{ type: "start-timer", timer: "ask-again", ms }] };
}

// ---- acknowledgements ------------------------------------------------------------------------

/** While working or waiting to leave, on a welcomed connection, unanswered messages are timed. */
function acksWatched(state: AgentState): boolean {
  return state.connection.name === "connected" && (state.phase === "working" || state.phase === "draining" || state.phase === "handing-back");
}

/** On a new connection: the backlog was just sent again, so the wait starts now. */
function watchAcks(state: AgentState, settings: MachineSettings): AgentEffect[] {
  return state.outstanding > 0 ? [{ type: "start-timer", timer: "ack", ms: settings.ackTimeoutMs }] : [];
}

/**
 * The timer runs from the last ack (or the first message after none was outstanding); more
 * messages sent without an ack do not push it back.
 */
function acksChanged(state: AgentState, outstanding: number, progressed: boolean, settings: MachineSettings): Step {
  const next: AgentState = { ...state, outstanding };
  if (!acksWatched(next)) return { state: next, effects: [] };
  if (outstanding === 0) return { state: next, effects: state.outstanding > 0 ? [{ type: "cancel-timer", timer: "ack" }] : [] };
  if (progressed || state.outstanding === 0) return { state: next, effects: [{ type: "start-timer", timer: "ack", ms: settings.ackTimeoutMs }] };
  return { state: next, effects: [] };
}

// ---- leaving ---------------------------------------------------------------------------------

function stopRequested(state: AgentState, mode: ShutdownMode, at: number, settings: MachineSettings): Step {
  if (state.phase === "draining" && mode === "hand-back" && state.mode === "finish") {
    return handBack({ ...state, mode }, "requested", at, [log("info", "handing back the running tasks now")]);
  }
  if (state.phase !== "working") return { state, effects: [] };

  const connected = state.connection.name === "connected";
  const timeoutMs = settings.shutdownTimeoutMs;
  const next: AgentState = { ...state, mode, deadline: at + timeoutMs };
  const effects: AgentEffect[] = [
    { type: "pause-tasks" },
    ...(connected ? [{ type: "send", message: { type: "pause" } } as const] : []),
    log(
      "info",
      `shutting down (${mode}): ${connected ? "sent pause" : "pause goes out with the next welcome"}; the service sends no new work`,
    ),
    shutdownStep({ step: "pause", mode }),
  ];
  if (mode === "hand-back" || idle(next)) return handBack(next, "mode", at, effects);

  const waitingFor = [
    ...(next.running.length > 0 ? [plural(next.running.length, "running task")] : []),
    ...(unackedOnly(next).length > 0 ? [plural(unackedOnly(next).length, "unacknowledged result")] : []),
  ];
  return {
    state: { ...next, phase: "draining" },
    effects: [
      ...effects,
      log("info", `waiting up to ${seconds(timeoutMs)} for ${waitingFor.join(" and ")} (signal again to hand them back now)`),
      { type: "start-timer", timer: "shutdown-deadline", ms: timeoutMs },
    ],
  };
}

function tasksChanged(state: AgentState, at: number): Step {
  if (state.phase !== "draining" || !idle(state)) return { state, effects: [] };
  return sayGoodbye(state, at, [
    { type: "cancel-timer", timer: "shutdown-deadline" },
    log("info", "every task finished and its result was acknowledged"),
  ]);
}

/** Stops what still runs (the goodbye hands it back); straight on to the goodbye when nothing does. */
function handBack(state: AgentState, why: "mode" | "timeout" | "requested", at: number, effects: AgentEffect[]): Step {
  const before: AgentEffect[] = [...effects, { type: "cancel-timer", timer: "shutdown-deadline" }];
  if (state.running.length === 0) return sayGoodbye(state, at, before);
  const ids = [...state.running];
  const them = ids.length === 1 ? "it" : "them";
  return {
    state: { ...state, phase: "handing-back" },
    effects: [
      ...before,
      log("info", `stopping ${plural(ids.length, "running task")} (${ids.join(", ")}): the goodbye hands ${them} back`),
      shutdownStep({ step: "hand-back", taskIds: ids, why }),
      { type: "stop-tasks" },
    ],
  };
}

/** On a welcomed connection now, or on the next one while time allows. */
function sayGoodbye(state: AgentState, at: number, effects: AgentEffect[] = []): Step {
  const before = [...effects];
  if (state.unacked.length > 0) {
    before.push(
      log(
        "warn",
        `leaving with ${plural(state.unacked.length, "unacknowledged result")} (${state.unacked.join(", ")}): the service hands those tasks back`,
      ),
    );
  }
  const windowMs = Math.max(0, Math.min(GOODBYE_RECONNECT_MS, (state.deadline ?? at) - at));
  const next: AgentState = { ...state, phase: "saying-goodbye", goodbye: { writing: false, expired: false } };
  before.push({ type: "start-timer", timer: "goodbye-deadline", ms: windowMs });
  if (state.connection.name === "connected") return writeGoodbye(next, before);
  if (windowMs === 0) return leaveWithoutGoodbye(next, before);

  before.push(log("info", `not connected: trying for ${seconds(windowMs)} to reconnect and say goodbye`));
  if (state.connection.name !== "backing-off") return { state: next, effects: before };
  // Now, not after the rest of a back-off delay.
  const retry = findService(next);
  return { state: retry.state, effects: [...before, { type: "cancel-timer", timer: "retry" }, ...retry.effects] };
}

function writeGoodbye(state: AgentState, effects: AgentEffect[]): Step {
  return {
    state: { ...state, goodbye: { ...state.goodbye, writing: true } },
    effects: [...effects, { type: "write-goodbye" }],
  };
}

function goodbyeWritten(state: AgentState, ok: boolean): Step {
  if (state.phase !== "saying-goodbye" || !state.goodbye.writing) return { state, effects: [] };
  const next: AgentState = { ...state, goodbye: { ...state.goodbye, writing: false } };
  if (ok) {
    return close(next, { reason: "stopped" }, [
      log("info", "goodbye sent; closing the connection"),
      shutdownStep({ step: "goodbye", said: true }),
    ]);
  }
  if (state.goodbye.expired) return leaveWithoutGoodbye(next);
  switch (next.connection.name) {
    case "connected":
      // A socket that cannot take one frame in time is no use: drop it and say goodbye on the next one.
      return { state: next, effects: [{ type: "close-connection" }] };
    case "backing-off": {
      // The connection died under the goodbye: the next one now, not after a back-off delay.
      const retry = findService(next);
      return {
        state: retry.state,
        effects: [log("info", "not connected: reconnecting at once to say goodbye"), { type: "cancel-timer", timer: "retry" }, ...retry.effects],
      };
    }
    default:
      return { state: next, effects: [] };
  }
}

function leaveWithoutGoodbye(state: AgentState, effects: AgentEffect[] = []): Step {
  return close(state, { reason: "stopped" }, [
    ...effects,
    log("warn", "left without a goodbye (not connected): the service hands this session's tasks back when it gives the session up"),
    shutdownStep({ step: "goodbye", said: false }),
  ]);
}

/** Retrying cannot help: the agent ends with `error`. */
function fail(state: AgentState, error: AgentFatalError): Step {
  return close(state, { reason: "fatal", error }, [
    log("error", error.message),
    { type: "emit", notice: { name: "error", value: { fatal: true, code: error.code, message: error.message } } },
  ]);
}

/** No new connection; the open one is closed, and the agent stops once it has. */
function close(state: AgentState, exit: AgentExit, effects: AgentEffect[]): Step {
  const next: AgentState = { ...state, phase: "closing", exit: state.exit ?? exit };
  const all: AgentEffect[] = [
    ...effects,
    { type: "cancel-timer", timer: "retry" },
    { type: "cancel-timer", timer: "shutdown-deadline" },
    { type: "cancel-timer", timer: "goodbye-deadline" },
    { type: "cancel-timer", timer: "ack" },
    { type: "cancel-timer", timer: "ask-again" },
  ];
  switch (state.connection.name) {
    case "connecting":
    case "connected":
      return { state: next, effects: [...all, { type: "close-connection" }] };
    case "finding-service": {
      const done = stopped({ ...next, connection: { name: "down" } });
      return { state: done.state, effects: [...all, { type: "stop-finding-service" }, ...done.effects] };
    }
    case "backing-off":
    case "down": {
      const done = stopped({ ...next, connection: { name: "down" } });
      return { state: done.state, effects: [...all, ...done.effects] };
    }
  }
}

function stopped(state: AgentState): Step {
  const exit = state.exit ?? { reason: "stopped" };
  return { state: { ...state, phase: "stopped", exit }, effects: [{ type: "exit", exit }] };
}

// ---- helpers ---------------------------------------------------------------------------------

function idle(state: AgentState): boolean {
  return state.running.length === 0 && state.unacked.length === 0;
}

/** Results awaiting their ack whose task is no longer running. */
function unackedOnly(state: AgentState): string[] {
  return state.unacked.filter((id) => !state.running.includes(id));
}

function log(level: LogLevel, message: string): AgentEffect {
  return { type: "log", level, message };
}

function shutdownStep(value: ShutdownStep): AgentEffect {
  return { type: "emit", notice: { name: "shutdown", value } };
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
