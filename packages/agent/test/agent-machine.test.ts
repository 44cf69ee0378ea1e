/**
 * The agent's state machine, one row per transition: a state, an event, the state it moves to
 * and the effects it asks for, in order. No socket, no timer, no Nix.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PROTOCOL_VERSION, type Welcome } from "@nimbus/protocol";
import {
  type AgentEffect,
  type AgentEvent,
  type AgentInput,
  type AgentState,
  initialAgentState,
  type ConnectionState,
  type MachineSettings,
  step,
} from "../src/agent-machine.ts";
import { AgentFatalError } from "../src/errors.ts";

const settings: MachineSettings = { heartbeatIntervalMs: 30_000, shutdownTimeoutMs: 600_000, ackTimeoutMs: 60_000 };
const URL = "ws://127.0.0.1:4800/agent";
const AT = 1_000_000;

const connections = {
  down: { name: "down" },
  finding: { name: "finding-service" },
  connecting: { name: "connecting", url: URL },
  connected: { name: "connected", url: URL, connectionId: "c1" },
  backingOff: { name: "backing-off" },
} satisfies Record<string, ConnectionState>;

function state(fields: Partial<AgentState> = {}): AgentState {
  return { ...initialAgentState(), ...fields };
}

/** A state after `stop` at AT (so the deadline is AT + the shutdown timeout). */
function leaving(fields: Partial<AgentState>): AgentState {
  return state({ mode: "finish", deadline: AT + settings.shutdownTimeoutMs, ...fields });
}

const welcome: Welcome = { type: "welcome", protocolVersion: PROTOCOL_VERSION, serviceVersion: "0.1.0", connectionId: "c1", heartbeatIntervalMs: 60_000 };

/** Effects as short strings, so a row reads as what the shell will do. */
function show(effect: AgentEffect): string {
  switch (effect.type) {
    case "log":
      return `log ${effect.level} ${effect.message}`;
    case "emit":
      return `emit ${effect.notice.name} ${JSON.stringify(effect.notice.value, (k, v) => (k === "error" ? v.code : v))}`;
    case "connect":
      return `connect ${effect.url}`;
    case "send":
      return `send ${effect.message.type}`;
    case "start-timer":
      return `start-timer ${effect.timer} ${effect.ms}`;
    case "cancel-timer":
      return `cancel-timer ${effect.timer}`;
    case "exit":
      return `exit ${effect.exit.reason === "fatal" ? `fatal ${effect.exit.error.code}` : "stopped"}`;
    case "drop-connection":
      return `drop-connection ${effect.problem}`;
    default:
      return effect.type;
  }
}

const CANCEL_ALL = ["cancel-timer retry", "cancel-timer shutdown-deadline", "cancel-timer goodbye-deadline", "cancel-timer ack", "cancel-timer ask-again"];

interface Row {
  name: string;
  given: AgentState;
  event: AgentInput & { at?: number };
  /** The fields of the next state that matter to the row. */
  then: Partial<AgentState>;
  effects: string[];
}

const closedEnd = (code: number, reason: string, welcomed: boolean, problem?: string) =>
  ({ kind: "closed", code, reason, welcomed, problem }) as const;

const rows: Row[] = [
  // ---- asking again: the service may have taken this agent's class for full while its slot came free ----
  {
    name: "a welcome with askAgainMs asks for work now and once more after that long",
    given: state({ connection: connections.connecting, attempt: 1, outstanding: 0 }),
    event: { type: "welcomed", welcome: { ...welcome, askAgainMs: 750 } },
    then: { connection: connections.connected },
    effects: [
      "reset-backoff",
      `log info connected to ${URL} as c1 (service Nimbus 0.1.0, heartbeat every 30 s)`,
      `emit welcome ${JSON.stringify({ ...welcome, askAgainMs: 750 })}`,
      "send request-work",
      "send-backlog",
      "start-timer ask-again 750",
    ],
  },
  {
    name: "a result-ack with askAgainMs starts the ask-again timer",
    given: state({ connection: connections.connected }),
    event: { type: "ask-again", ms: 750 },
    then: { connection: connections.connected },
    effects: ["start-timer ask-again 750"],
  },
  {
    name: "the ask-again timer sends request-work while working on a welcomed connection",
    given: state({ connection: connections.connected }),
    event: { type: "timer", timer: "ask-again" },
    then: {},
    effects: ["log debug asking for work again", "send request-work"],
  },
  {
    name: "the ask-again timer does nothing while disconnected (the next welcome asks)",
    given: state({ connection: connections.backingOff }),
    event: { type: "timer", timer: "ask-again" },
    then: {},
    effects: [],
  },
  {
    name: "a leaving agent does not ask again",
    given: leaving({ phase: "draining", connection: connections.connected }),
    event: { type: "ask-again", ms: 750 },
    then: { phase: "draining" },
    effects: [],
  },
  {
    name: "a leaving agent's ask-again timer sends nothing",
    given: leaving({ phase: "draining", connection: connections.connected }),
    event: { type: "timer", timer: "ask-again" },
    then: { phase: "draining" },
    effects: [],
  },
  // ---- acknowledgements: a connection where nothing is acknowledged any more is made again ----
  {
    name: "the first message awaiting an ack starts the ack timer",
    given: state({ connection: connections.connected, outstanding: 0 }),
    event: { type: "acks-changed", outstanding: 1, progressed: false },
    then: { outstanding: 1 },
    effects: ["start-timer ack 60000"],
  },
  {
    name: "more messages without an ack do not push the timer back",
    given: state({ connection: connections.connected, outstanding: 2 }),
    event: { type: "acks-changed", outstanding: 3, progressed: false },
    then: { outstanding: 3 },
    effects: [],
  },
  {
    name: "an ack restarts the timer while messages still wait",
    given: state({ connection: connections.connected, outstanding: 3 }),
    event: { type: "acks-changed", outstanding: 2, progressed: true },
    then: { outstanding: 2 },
    effects: ["start-timer ack 60000"],
  },
  {
    name: "the last ack stops the timer",
    given: state({ connection: connections.connected, outstanding: 1 }),
    event: { type: "acks-changed", outstanding: 0, progressed: true },
    then: { outstanding: 0 },
    effects: ["cancel-timer ack"],
  },
  {
    name: "no timer while disconnected (the welcome starts it)",
    given: state({ connection: connections.backingOff, outstanding: 0 }),
    event: { type: "acks-changed", outstanding: 1, progressed: false },
    then: { outstanding: 1 },
    effects: [],
  },
  {
    name: "a welcome with messages outstanding sends them again and starts the timer",
    given: state({ connection: connections.connecting, attempt: 1, outstanding: 2 }),
    event: { type: "welcomed", welcome },
    then: { connection: connections.connected },
    effects: [
      "reset-backoff",
      `log info connected to ${URL} as c1 (service Nimbus 0.1.0, heartbeat every 30 s)`,
      `emit welcome ${JSON.stringify(welcome)}`,
      "send request-work",
      "send-backlog",
      "start-timer ack 60000",
    ],
  },
  {
    name: "no ack within the timeout: the connection is dropped (the usual reconnect follows)",
    given: state({ connection: connections.connected, outstanding: 2 }),
    event: { type: "timer", timer: "ack" },
    then: { connection: connections.connected },
    effects: ["drop-connection no acknowledgement from the service for 60 s with 2 messages waiting for one"],
  },
  {
    name: "the ack timer while draining: dropped too (the results it waits for need their acks)",
    given: leaving({ phase: "draining", connection: connections.connected, unacked: ["t1"], outstanding: 1 }),
    event: { type: "timer", timer: "ack" },
    then: { phase: "draining" },
    effects: ["drop-connection no acknowledgement from the service for 60 s with 1 message waiting for one"],
  },
  {
    name: "the ack timer while saying goodbye: ignored",
    given: leaving({ phase: "saying-goodbye", connection: connections.connected, outstanding: 1 }),
    event: { type: "timer", timer: "ack" },
    then: { phase: "saying-goodbye" },
    effects: [],
  },
  {
    name: "a late ack timer with nothing outstanding: ignored",
    given: state({ connection: connections.connected, outstanding: 0 }),
    event: { type: "timer", timer: "ack" },
    then: {},
    effects: [],
  },
  // ---- the connection ----
  {
    name: "start: ask service-info for the socket",
    given: state(),
    event: { type: "start" },
    then: { phase: "working", connection: connections.finding, attempt: 1 },
    effects: ["find-service"],
  },
  {
    name: "start twice: nothing more",
    given: state({ connection: connections.finding, attempt: 1 }),
    event: { type: "start" },
    then: { connection: connections.finding, attempt: 1 },
    effects: [],
  },
  {
    name: "service found: open the socket",
    given: state({ connection: connections.finding, attempt: 2 }),
    event: { type: "service-found", url: URL },
    then: { connection: connections.connecting, attempt: 2 },
    effects: [`emit connecting {"url":"${URL}","attempt":2}`, `log debug connecting to ${URL} (attempt 2)`, `connect ${URL}`],
  },
  {
    name: "service-info unavailable: back off",
    given: state({ connection: connections.finding, attempt: 1 }),
    event: { type: "service-unavailable", problem: "cannot reach http://x/api/service-info: ECONNREFUSED", retryInMs: 500 },
    then: { connection: connections.backingOff },
    effects: [
      "log warn cannot reach http://x/api/service-info: ECONNREFUSED; retrying in 0.5 s",
      'emit disconnected {"reason":"","welcomed":false,"problem":"cannot reach http://x/api/service-info: ECONNREFUSED","retryInMs":500}',
      "start-timer retry 500",
    ],
  },
  {
    name: "service speaks another protocol: fatal, stopped at once",
    given: state({ connection: connections.finding, attempt: 1 }),
    event: { type: "service-incompatible", error: new AgentFatalError("protocol-version", "speaks agent protocol 2") },
    then: { phase: "stopped", connection: connections.down },
    effects: [
      "log error speaks agent protocol 2",
      'emit error {"fatal":true,"code":"protocol-version","message":"speaks agent protocol 2"}',
      ...CANCEL_ALL,
      "exit fatal protocol-version",
    ],
  },
  {
    name: "welcome while working: reset the back-off, ask for work, send what waited",
    given: state({ connection: connections.connecting, attempt: 3 }),
    event: { type: "welcomed", welcome },
    then: { connection: connections.connected, attempt: 0 },
    effects: [
      "reset-backoff",
      `log info connected to ${URL} as c1 (service Nimbus 0.1.0, heartbeat every 30 s)`,
      `emit welcome ${JSON.stringify(welcome)}`,
      "send request-work",
      "send-backlog",
    ],
  },
  {
    name: "welcome while draining: pause again on the new connection",
    given: leaving({ phase: "draining", connection: connections.connecting, running: ["t1"] }),
    event: { type: "welcomed", welcome },
    then: { phase: "draining", connection: connections.connected },
    effects: ["reset-backoff", `log info connected to ${URL} as c1 (service Nimbus 0.1.0, heartbeat every 30 s)`, `emit welcome ${JSON.stringify(welcome)}`, "send pause", "send-backlog"],
  },
  {
    name: "welcome while saying goodbye: results again, then goodbye and nothing else",
    given: leaving({ phase: "saying-goodbye", connection: connections.connecting }),
    event: { type: "welcomed", welcome },
    then: { phase: "saying-goodbye", connection: connections.connected, goodbye: { writing: true, expired: false } },
    effects: ["reset-backoff", `log info connected to ${URL} as c1 (service Nimbus 0.1.0, heartbeat every 30 s)`, `emit welcome ${JSON.stringify(welcome)}`, "resend-results", "write-goodbye"],
  },
  {
    name: "refused before the welcome: warn and back off",
    given: state({ connection: connections.connecting, attempt: 1 }),
    event: { type: "connection-ended", end: closedEnd(1006, "", false, "the service refused the connection with HTTP 503"), retryInMs: 40 },
    then: { connection: connections.backingOff },
    effects: [
      "cancel-timer ack",
      `log warn cannot connect to ${URL}: the service refused the connection with HTTP 503; retrying in 0.0 s`,
      'emit disconnected {"code":1006,"reason":"","welcomed":false,"problem":"the service refused the connection with HTTP 503","retryInMs":40}',
      "start-timer retry 40",
    ],
  },
  {
    name: "the gateway's routine 1001: info, not a warning",
    given: state({ connection: connections.connected }),
    event: { type: "connection-ended", end: closedEnd(1001, "Going away", true), retryInMs: 500 },
    then: { connection: connections.backingOff },
    effects: [
      "cancel-timer ack",
      'log info connection c1 closed with 1001 "Going away" by the service; reconnecting in 0.5 s',
      'emit disconnected {"code":1001,"reason":"Going away","welcomed":true,"retryInMs":500}',
      "start-timer retry 500",
    ],
  },
  {
    name: "a lost connection: warn with the reason",
    given: state({ connection: connections.connected }),
    event: { type: "connection-ended", end: closedEnd(1006, "", true, "no heartbeat-ack within 60 s"), retryInMs: 1_000 },
    then: { connection: connections.backingOff },
    effects: [
      "cancel-timer ack",
      "log warn connection c1 lost: no heartbeat-ack within 60 s; reconnecting in 1.0 s",
      'emit disconnected {"code":1006,"reason":"","welcomed":true,"problem":"no heartbeat-ack within 60 s","retryInMs":1000}',
      "start-timer retry 1000",
    ],
  },
  {
    name: "a connection that ends fatally (token refused): stopped, no retry",
    given: state({ connection: connections.connecting }),
    event: { type: "connection-ended", end: { kind: "fatal", error: new AgentFatalError("token-refused", "cluster join token refused (HTTP 401)") }, retryInMs: 0 },
    then: { phase: "stopped", connection: connections.down },
    effects: [
      "log error cluster join token refused (HTTP 401)",
      'emit error {"fatal":true,"code":"token-refused","message":"cluster join token refused (HTTP 401)"}',
      ...CANCEL_ALL,
      "exit fatal token-refused",
    ],
  },
  {
    name: "the back-off is over: find the service again",
    given: state({ connection: connections.backingOff, attempt: 2 }),
    event: { type: "timer", timer: "retry" },
    then: { connection: connections.finding, attempt: 3 },
    effects: ["find-service"],
  },
  {
    name: "a retry timer that fires while connected: ignored",
    given: state({ connection: connections.connected }),
    event: { type: "timer", timer: "retry" },
    then: { connection: connections.connected },
    effects: [],
  },
  {
    name: "task changes while working: only noted",
    given: state({ connection: connections.connected }),
    event: { type: "tasks-changed", running: ["t1"], unacked: [] },
    then: { phase: "working", running: ["t1"] },
    effects: [],
  },
  // ---- leaving ----
  {
    name: "stop (finish) with nothing running: pause, then goodbye at once",
    given: state({ connection: connections.connected }),
    event: { type: "stop", mode: "finish", at: AT },
    then: { phase: "saying-goodbye", mode: "finish", deadline: AT + 600_000, goodbye: { writing: true, expired: false } },
    effects: [
      "pause-tasks",
      "send pause",
      "log info shutting down (finish): sent pause; the service sends no new work",
      'emit shutdown {"step":"pause","mode":"finish"}',
      "cancel-timer shutdown-deadline",
      "start-timer goodbye-deadline 10000",
      "write-goodbye",
    ],
  },
  {
    name: "stop (finish) with a task running: drain, up to the shutdown timeout",
    given: state({ connection: connections.connected, running: ["t1"], unacked: ["t0"] }),
    event: { type: "stop", mode: "finish", at: AT },
    then: { phase: "draining", mode: "finish" },
    effects: [
      "pause-tasks",
      "send pause",
      "log info shutting down (finish): sent pause; the service sends no new work",
      'emit shutdown {"step":"pause","mode":"finish"}',
      "log info waiting up to 600 s for 1 running task and 1 unacknowledged result (signal again to hand them back now)",
      "start-timer shutdown-deadline 600000",
    ],
  },
  {
    name: "stop while disconnected: the pause waits for the next welcome",
    given: state({ connection: connections.backingOff, running: ["t1", "t2"] }),
    event: { type: "stop", mode: "finish", at: AT },
    then: { phase: "draining", connection: connections.backingOff },
    effects: [
      "pause-tasks",
      "log info shutting down (finish): pause goes out with the next welcome; the service sends no new work",
      'emit shutdown {"step":"pause","mode":"finish"}',
      "log info waiting up to 600 s for 2 running tasks (signal again to hand them back now)",
      "start-timer shutdown-deadline 600000",
    ],
  },
  {
    name: "stop (hand-back) with a task running: stop it, the goodbye hands it back",
    given: state({ connection: connections.connected, running: ["t1"] }),
    event: { type: "stop", mode: "hand-back", at: AT },
    then: { phase: "handing-back", mode: "hand-back" },
    effects: [
      "pause-tasks",
      "send pause",
      "log info shutting down (hand-back): sent pause; the service sends no new work",
      'emit shutdown {"step":"pause","mode":"hand-back"}',
      "cancel-timer shutdown-deadline",
      "log info stopping 1 running task (t1): the goodbye hands it back",
      'emit shutdown {"step":"hand-back","taskIds":["t1"],"why":"mode"}',
      "stop-tasks",
    ],
  },
  {
    name: "stop (hand-back) during a finish: switch at once",
    given: leaving({ phase: "draining", connection: connections.connected, running: ["t1", "t2"] }),
    event: { type: "stop", mode: "hand-back", at: AT + 5_000 },
    then: { phase: "handing-back", mode: "hand-back" },
    effects: [
      "log info handing back the running tasks now",
      "cancel-timer shutdown-deadline",
      "log info stopping 2 running tasks (t1, t2): the goodbye hands them back",
      'emit shutdown {"step":"hand-back","taskIds":["t1","t2"],"why":"requested"}',
      "stop-tasks",
    ],
  },
  {
    name: "stop (finish) again during a finish: nothing",
    given: leaving({ phase: "draining", connection: connections.connected, running: ["t1"] }),
    event: { type: "stop", mode: "finish", at: AT + 5_000 },
    then: { phase: "draining", mode: "finish" },
    effects: [],
  },
  {
    name: "stop while saying goodbye: nothing",
    given: leaving({ phase: "saying-goodbye", connection: connections.connected, goodbye: { writing: true, expired: false } }),
    event: { type: "stop", mode: "hand-back", at: AT + 5_000 },
    then: { phase: "saying-goodbye", mode: "finish" },
    effects: [],
  },
  {
    name: "draining: a task ends but its result is not acknowledged yet: keep waiting",
    given: leaving({ phase: "draining", connection: connections.connected, running: ["t1"] }),
    event: { type: "tasks-changed", running: [], unacked: ["t1"] },
    then: { phase: "draining", running: [], unacked: ["t1"] },
    effects: [],
  },
  {
    name: "draining: the last result acknowledged: goodbye",
    given: leaving({ phase: "draining", connection: connections.connected, unacked: ["t1"] }),
    event: { type: "tasks-changed", running: [], unacked: [], at: AT + 7_000 },
    then: { phase: "saying-goodbye", unacked: [], goodbye: { writing: true, expired: false } },
    effects: [
      "cancel-timer shutdown-deadline",
      "log info every task finished and its result was acknowledged",
      "start-timer goodbye-deadline 10000",
      "write-goodbye",
    ],
  },
  {
    name: "draining: the shutdown timeout: hand back what is left",
    given: leaving({ phase: "draining", connection: connections.connected, running: ["t1"] }),
    event: { type: "timer", timer: "shutdown-deadline", at: AT + 600_000 },
    then: { phase: "handing-back" },
    effects: [
      "log warn shutdown timeout (600 s) reached: handing back what is left",
      "cancel-timer shutdown-deadline",
      "log info stopping 1 running task (t1): the goodbye hands it back",
      'emit shutdown {"step":"hand-back","taskIds":["t1"],"why":"timeout"}',
      "stop-tasks",
    ],
  },
  {
    name: "handed back: goodbye, warning of results never acknowledged",
    given: leaving({ phase: "handing-back", mode: "hand-back", connection: connections.connected, unacked: ["t0"] }),
    event: { type: "tasks-stopped", at: AT + 1_000 },
    then: { phase: "saying-goodbye", goodbye: { writing: true, expired: false } },
    effects: [
      "log warn leaving with 1 unacknowledged result (t0): the service hands those tasks back",
      "start-timer goodbye-deadline 10000",
      "write-goodbye",
    ],
  },
  {
    name: "goodbye while backing off: reconnect now, for what is left of the timeout",
    given: leaving({ phase: "handing-back", connection: connections.backingOff, attempt: 4, deadline: AT + 3_000 }),
    event: { type: "tasks-stopped", at: AT + 1_000 },
    then: { phase: "saying-goodbye", connection: connections.finding, attempt: 5, goodbye: { writing: false, expired: false } },
    effects: [
      "start-timer goodbye-deadline 2000",
      "log info not connected: trying for 2.0 s to reconnect and say goodbye",
      "cancel-timer retry",
      "find-service",
    ],
  },
  {
    name: "goodbye while connecting: wait for the welcome",
    given: leaving({ phase: "handing-back", connection: connections.connecting }),
    event: { type: "tasks-stopped", at: AT + 1_000 },
    then: { phase: "saying-goodbye", connection: connections.connecting },
    effects: ["start-timer goodbye-deadline 10000", "log info not connected: trying for 10 s to reconnect and say goodbye"],
  },
  {
    name: "goodbye with no time left and no connection: leave without one",
    given: leaving({ phase: "handing-back", connection: connections.backingOff, deadline: AT }),
    event: { type: "tasks-stopped", at: AT + 1_000 },
    then: { phase: "stopped", connection: connections.down, exit: { reason: "stopped" } },
    effects: [
      "start-timer goodbye-deadline 0",
      "log warn left without a goodbye (not connected): the service hands this session's tasks back when it gives the session up",
      'emit shutdown {"step":"goodbye","said":false}',
      ...CANCEL_ALL,
      "exit stopped",
    ],
  },
  {
    name: "goodbye written: close the connection",
    given: leaving({ phase: "saying-goodbye", connection: connections.connected, goodbye: { writing: true, expired: false } }),
    event: { type: "goodbye-written", ok: true },
    then: { phase: "closing", exit: { reason: "stopped" } },
    effects: ["log info goodbye sent; closing the connection", 'emit shutdown {"step":"goodbye","said":true}', ...CANCEL_ALL, "close-connection"],
  },
  {
    name: "goodbye not written in time: drop that socket, say it on the next",
    given: leaving({ phase: "saying-goodbye", connection: connections.connected, goodbye: { writing: true, expired: false } }),
    event: { type: "goodbye-written", ok: false },
    then: { phase: "saying-goodbye", goodbye: { writing: false, expired: false } },
    effects: ["close-connection"],
  },
  {
    name: "the connection died under the goodbye: reconnect at once, not after the back-off",
    given: leaving({ phase: "saying-goodbye", connection: connections.backingOff, attempt: 1, goodbye: { writing: true, expired: false } }),
    event: { type: "goodbye-written", ok: false },
    then: { phase: "saying-goodbye", connection: connections.finding, attempt: 2, goodbye: { writing: false, expired: false } },
    effects: ["log info not connected: reconnecting at once to say goodbye", "cancel-timer retry", "find-service"],
  },
  {
    name: "the goodbye window ends while one is being written: wait for the write",
    given: leaving({ phase: "saying-goodbye", connection: connections.connected, goodbye: { writing: true, expired: false } }),
    event: { type: "timer", timer: "goodbye-deadline" },
    then: { phase: "saying-goodbye", goodbye: { writing: true, expired: true } },
    effects: [],
  },
  {
    name: "the write fails after the window: leave without a goodbye",
    given: leaving({ phase: "saying-goodbye", connection: connections.connected, goodbye: { writing: true, expired: true } }),
    event: { type: "goodbye-written", ok: false },
    then: { phase: "closing", exit: { reason: "stopped" } },
    effects: [
      "log warn left without a goodbye (not connected): the service hands this session's tasks back when it gives the session up",
      'emit shutdown {"step":"goodbye","said":false}',
      ...CANCEL_ALL,
      "close-connection",
    ],
  },
  {
    name: "the goodbye window ends while connecting: give up, close the attempt",
    given: leaving({ phase: "saying-goodbye", connection: connections.connecting }),
    event: { type: "timer", timer: "goodbye-deadline" },
    then: { phase: "closing", connection: connections.connecting },
    effects: [
      "log warn left without a goodbye (not connected): the service hands this session's tasks back when it gives the session up",
      'emit shutdown {"step":"goodbye","said":false}',
      ...CANCEL_ALL,
      "close-connection",
    ],
  },
  {
    name: "closing: the socket has closed: stopped",
    given: leaving({ phase: "closing", connection: connections.connected, exit: { reason: "stopped" } }),
    event: { type: "connection-ended", end: closedEnd(1000, "agent leaving", true), retryInMs: 500 },
    then: { phase: "stopped", connection: connections.down },
    effects: ["exit stopped"],
  },
  {
    name: "a fatal error while leaving ends it at once",
    given: leaving({ phase: "draining", connection: connections.connected, running: ["t1"] }),
    event: { type: "connection-ended", end: { kind: "fatal", error: new AgentFatalError("session-refused", "session refused") }, retryInMs: 0 },
    then: { phase: "stopped", connection: connections.down },
    effects: ["log error session refused", 'emit error {"fatal":true,"code":"session-refused","message":"session refused"}', ...CANCEL_ALL, "exit fatal session-refused"],
  },
  {
    name: "the shell crashed: fatal, close the connection first",
    given: state({ connection: connections.connected }),
    event: { type: "crashed", error: new AgentFatalError("internal", "the agent failed unexpectedly: boom") },
    then: { phase: "closing", connection: connections.connected },
    effects: [
      "log error the agent failed unexpectedly: boom",
      'emit error {"fatal":true,"code":"internal","message":"the agent failed unexpectedly: boom"}',
      ...CANCEL_ALL,
      "close-connection",
    ],
  },
  {
    name: "stopped: every event is ignored",
    given: state({ phase: "stopped", exit: { reason: "stopped" } }),
    event: { type: "start" },
    then: { phase: "stopped" },
    effects: [],
  },
];

describe("agent state machine", () => {
  for (const row of rows) {
    it(row.name, () => {
      const event = { at: AT, ...row.event } as AgentEvent;
      const before = structuredClone(row.given);
      const next = step(row.given, event, settings);
      assert.deepEqual(next.effects.map(show), row.effects);
      for (const [key, value] of Object.entries(row.then)) {
        assert.deepEqual(next.state[key as keyof AgentState], value, `state.${key}`);
      }
      assert.deepEqual(row.given, before, "step does not change the state it is given");
    });
  }

  it("a stop while finding the service stops at once and abandons the request", () => {
    const given = state({ connection: connections.finding, attempt: 1 });
    const next = step(given, { type: "stop", mode: "hand-back", at: AT }, { ...settings, shutdownTimeoutMs: 0 });
    assert.equal(next.state.phase, "stopped");
    assert.ok(next.effects.map(show).includes("stop-finding-service"));
    assert.equal(next.effects.map(show).at(-1), "exit stopped");
    // A late answer to the abandoned request changes nothing.
    assert.deepEqual(step(next.state, { type: "service-found", url: URL, at: AT }, settings).effects, []);
  });
});
