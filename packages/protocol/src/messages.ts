import * as z from "zod";
import { AgentInfo } from "./agent-info.ts";
import { IDLE_TIMEOUT_MS } from "./limits.ts";
import { CacheUploadComplete, CacheUploadRequest, CacheUploadResult, CacheUploadUrls, WelcomeCache } from "./builtin-cache.ts";
import {
  BuildLog,
  BuildPushing,
  BuildResult,
  AskAgainMs,
  BuildTask,
  CancelTask,
  EffectLog,
  EffectResult,
  EffectTask,
  ResultAck,
  EvaluateTask,
  EvaluationDone,
  EvaluationEvents,
  RequestWork,
  StreamAck,
} from "./tasks.ts";

// ---- agent → service -------------------------------------------------------

/**
 * The agent's session: made by the agent on first start, kept in its work directory, and
 * presented on every connection. Tasks belong to the session, so they survive reconnects.
 */
export const SessionCredential = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{32}$/, "32 hex characters"),
  secret: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url"),
});
export type SessionCredential = z.infer<typeof SessionCredential>;

/** First message on every connection. */
export const Hello = z.strictObject({
  type: z.literal("hello"),
  protocolVersion: z.number().int().min(1),
  agent: AgentInfo,
  session: SessionCredential,
  /** Task ids the agent is still running: the service keeps those, and hands back or re-sends the rest. */
  tasksInProgress: z.array(z.string().min(1).max(256)).max(1024),
});
export type Hello = z.infer<typeof Hello>;

/** Keeps the connection inside API Gateway's idle timeout and refreshes `lastSeen`. */
export const Heartbeat = z.strictObject({
  type: z.literal("heartbeat"),
  sentAt: z.iso.datetime(),
  /**
   * The tasks the agent holds (running, or awaiting `result-ack`), as in `hello`: the service
   * sends again a task its session has held for a while that the agent does not list (the
   * message that gave it was lost) and cancels a listed one the session no longer holds.
   */
  tasksInProgress: z.array(z.string().min(1).max(256)).max(1024).optional(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

/** The agent's info changed (it reloaded binary-caches.json on SIGHUP): the service uses it from now on. */
export const AgentInfoChanged = z.strictObject({ type: z.literal("agent-info"), agent: AgentInfo });
export type AgentInfoChanged = z.infer<typeof AgentInfoChanged>;

/** The agent takes no new work (it is shutting down); running tasks go on. */
export const Pause = z.strictObject({ type: z.literal("pause") });
export type Pause = z.infer<typeof Pause>;

/** The agent is leaving: every task its session still holds goes back to the queues at once. */
export const Goodbye = z.strictObject({ type: z.literal("goodbye") });
export type Goodbye = z.infer<typeof Goodbye>;

export const AgentMessage = z.discriminatedUnion("type", [
  Hello,
  Heartbeat,
  AgentInfoChanged,
  Pause,
  Goodbye,
  RequestWork,
  EvaluationEvents,
  EvaluationDone,
  BuildLog,
  BuildPushing,
  BuildResult,
  EffectLog,
  EffectResult,
  CacheUploadRequest,
  CacheUploadComplete,
]);
export type AgentMessage = z.infer<typeof AgentMessage>;
export const AGENT_MESSAGE_TYPES = AgentMessage.options.map((o) => o.shape.type.value);

// ---- service → agent -------------------------------------------------------

/** Answer to a valid `hello`: the agent is registered. */
export const Welcome = z.strictObject({
  type: z.literal("welcome"),
  protocolVersion: z.number().int(),
  serviceVersion: z.string(),
  connectionId: z.string(),
  heartbeatIntervalMs: z.number().int().positive().max(IDLE_TIMEOUT_MS - 1),
  /** The built-in cache (docs/cache.md): its public key, which the agent's Nix trusts. */
  cache: WelcomeCache.optional(),
  /** Send `request-work` once more this long after the welcome (docs/protocol.md, "Asking again"). */
  askAgainMs: AskAgainMs.optional(),
});
export type Welcome = z.infer<typeof Welcome>;

export const HeartbeatAck = z.strictObject({
  type: z.literal("heartbeat-ack"),
  sentAt: z.iso.datetime(),
});
export type HeartbeatAck = z.infer<typeof HeartbeatAck>;

export const ErrorCode = z.enum([
  "malformed-json",
  "invalid-message",
  "unknown-type",
  "hello-required",
  "duplicate-hello",
  "protocol-version",
  "unknown-connection",
  "unknown-task",
  "session-refused",
  "retry-later",
  "try-again",
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/**
 * The service could not act on a message; nothing changed. `fatal` errors end the connection.
 * `code` is any string on the wire so an older agent still understands a newer service's errors.
 */
export const ErrorMessage = z.strictObject({
  type: z.literal("error"),
  code: z.union([ErrorCode, z.string().min(1).max(64)]),
  message: z.string(),
  fatal: z.boolean(),
  /** The task the refused message was about, when there is one. */
  taskId: z.string().optional(),
});
export type ErrorMessage = z.infer<typeof ErrorMessage>;

export const ServiceMessage = z.discriminatedUnion("type", [
  Welcome,
  HeartbeatAck,
  ErrorMessage,
  EvaluateTask,
  BuildTask,
  EffectTask,
  StreamAck,
  ResultAck,
  CancelTask,
  CacheUploadUrls,
  CacheUploadResult,
]);
export type ServiceMessage = z.infer<typeof ServiceMessage>;
export const SERVICE_MESSAGE_TYPES = ServiceMessage.options.map((o) => o.shape.type.value);
