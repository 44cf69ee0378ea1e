/**
 * What a kind of task is to the agent (docs/agent.md, "Tasks"): how to run one, which message
 * ends it, and what to report when running it broke. The runner knows kinds only through this.
 */
import type { PathInfoSource } from "@nimbus/cache";
import type { AgentMessage, ServiceMessage } from "@nimbus/protocol";
import type { AckedStream } from "../acked-stream.ts";
import type { AgentCaches } from "../agent-caches.ts";
import type { Clock } from "../clock.ts";
import type { EffectSettings } from "../config.ts";
import type { EvaluationPolicy } from "../evaluation-isolation.ts";
import type { Logger } from "../log.ts";
import type { NixEnvironment } from "../nix-options.ts";
import type { Link } from "../outbox.ts";

/** A message that starts a task: every service message that is not about the connection or a task already running. */
export type TaskMessage = Exclude<
  ServiceMessage,
  { type: "welcome" | "heartbeat-ack" | "error" | "cancel" | "ack" | "result-ack" | "cache-upload-urls" | "cache-upload-result" }
>;

/** What the agent sends about a task. */
export type TaskReport = Extract<AgentMessage, { taskId: string }>;

/** The caches a task asks and pushes to, and the Nix store it works in (docs/agent.md, "Binary caches"). */
export interface TaskCaches extends AgentCaches {
  /** This agent's store, as `store:<id>` sources name it. */
  storeId: string;
  /** What this store registered for a path, asked of the agent's one long-lived `nix-store --serve` (a push describes its paths without a Nix process each). */
  pathInfos?: PathInfoSource;
}

/** What an effect needs of the agent's configuration. */
export interface EffectPolicy extends EffectSettings {
  /** `secretsJsonPath`, read afresh by each effect that asks for a secret. */
  secretsJsonPath: string | undefined;
  /** The bubblewrap executable (`bwrap` from PATH). */
  bwrap: string;
}

export interface TaskContext {
  /** The task's directory name under `<workDirectory>/<kind's directory>` (see `directoryName`). */
  directoryName: string;
  workDirectory: string;
  /** The agent's `apiBaseUrl`. */
  apiBaseUrl: string;
  nix: NixEnvironment;
  caches: TaskCaches;
  /** How evaluations are confined and limited (docs/security.md). */
  evaluation: EvaluationPolicy;
  /** How effects run (docs/effects.md). */
  effects: EffectPolicy;
  /** The agent's clock: task deadlines run on it. */
  clock: Clock;
  /** Sends now, or after the next welcome; the kind's result message is kept until `result-ack`. */
  link: Link;
  /** Batches the service acknowledges one by one (`ack`), sent again after each welcome until it does. */
  acked: AckedStream;
  log: Logger;
  /** Aborted when the task is stopped (cancel, unknown-task, the agent leaving): it kills its Nix process and ends, reporting nothing. */
  signal: AbortSignal;
}

export interface TaskOutcome {
  status: "succeeded" | "failed" | "exceptional";
  error?: string;
}

export interface TaskKind<T extends TaskMessage = TaskMessage> {
  /** The `type` of the service message that starts it. */
  readonly type: T["type"];
  /** The message that ends it, kept until the service answers `result-ack`. */
  readonly resultType: TaskReport["type"];
  /** The start line of the log, after `task <id>: `. */
  describe(task: T): string;
  /**
   * Runs it to its result message, sent through `context.link`. When stopped (`context.signal`)
   * it rejects with the signal's reason and reports nothing more.
   */
  run(task: T, context: TaskContext): Promise<TaskOutcome>;
  /** The result to send when `run` threw: a bug in the agent, said rather than leaving the service waiting. */
  internalError(task: T, error: string, context: TaskContext): { result: TaskReport; outcome: TaskOutcome };
}

/** Task ids may be "." or ".."; they must not name the parent directory. */
export function directoryName(taskId: string): string {
  return /^\.+$/.test(taskId) ? `_${taskId}` : taskId;
}
