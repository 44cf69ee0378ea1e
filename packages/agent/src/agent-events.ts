/** What a running agent tells the code that started it (`RunningAgent.events`, `exited`). */
import type { ErrorMessage, Heartbeat, HeartbeatAck, Welcome } from "@nimbus/protocol";
import type { ShutdownMode } from "./config.ts";
import type { AgentFatalError, FatalCode } from "./errors.ts";
import type { TaskFinished, TaskStarted } from "./task-runner.ts";

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

/** One event of the map as a value: what the lifecycle asks the shell to emit. */
export type AgentNotice = { [K in keyof AgentEventMap]: { name: K; value: AgentEventMap[K][0] } }[keyof AgentEventMap];
