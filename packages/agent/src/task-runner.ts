/**
 * Runs every task the service pushes, all at once (the service enforces `concurrentTasks`),
 * routes `ack`s to evaluation streams, and kills everything when the agent stops.
 */
import type { BuildTask, EvaluateTask, StreamAck } from "@nimbus/protocol";
import { AckedStream } from "./acked-stream.ts";
import { runBuild } from "./build.ts";
import { runEvaluation } from "./evaluation.ts";
import type { Logger } from "./log.ts";
import type { NixEnvironment } from "./nix-options.ts";
import type { Link } from "./outbox.ts";
import type { TaskContext, TaskOutcome } from "./task-context.ts";

export type TaskKind = "evaluate" | "build";

export interface TaskStarted {
  taskId: string;
  kind: TaskKind;
}

export interface TaskFinished {
  taskId: string;
  kind: TaskKind;
  /** `cancelled`: the agent stopped while it ran (for an evaluation, nothing more was sent). */
  status: TaskOutcome["status"] | "cancelled";
  error?: string;
  durationMs: number;
}

export interface TaskRunnerOptions {
  workDirectory: string;
  nix: NixEnvironment;
  link: Link;
  log: Logger;
  onStarted?: (event: TaskStarted) => void;
  onFinished?: (event: TaskFinished) => void;
}

interface Running {
  kind: TaskKind;
  controller: AbortController;
  stream: AckedStream | undefined;
  settled: Promise<void>;
}

export class TaskRunner {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(private readonly options: TaskRunnerOptions) {}

  /** Ids of the tasks still running (for `hello`). */
  inProgress(): string[] {
    return [...this.running.keys()];
  }

  handle(message: EvaluateTask | BuildTask | StreamAck): void {
    if (message.type === "ack") {
      this.running.get(message.taskId)?.stream?.ack(message.seq);
      return;
    }
    const { log } = this.options;
    if (this.stopping) {
      log("warn", `task ${message.taskId} ignored: the agent is stopping`);
      return;
    }
    if (this.running.has(message.taskId)) {
      // The service sent it again (e.g. after a reconnect): it is already running.
      log("info", `task ${message.taskId} is already running`);
      return;
    }
    this.start(message);
  }

  /** After a welcome: evaluation batches the service has not acknowledged, again. */
  resendUnacked(): void {
    for (const task of this.running.values()) task.stream?.resend();
  }

  /** Kills every task (SIGTERM to its Nix process) and waits for them to end, at most `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.stopping = true;
    const all = [...this.running.values()];
    for (const task of all) task.controller.abort(new Error("the agent is stopping"));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(all.map((t) => t.settled)),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  private start(task: EvaluateTask | BuildTask): void {
    const { log, link } = this.options;
    const kind: TaskKind = task.type;
    const controller = new AbortController();
    const stream = task.type === "evaluate" ? new AckedStream(link, task.taskId, controller.signal) : undefined;
    const context: TaskContext = {
      directoryName: directoryName(task.taskId),
      workDirectory: this.options.workDirectory,
      nix: this.options.nix,
      link,
      log,
      signal: controller.signal,
    };
    const started = Date.now();
    log(
      "info",
      task.type === "evaluate"
        ? `task ${task.taskId}: evaluating ${task.repository} at ${task.commit}`
        : `task ${task.taskId}: building ${task.drvPath}`,
    );
    this.options.onStarted?.({ taskId: task.taskId, kind });

    const run = task.type === "evaluate" ? runEvaluation(task, context, stream!) : runBuild(task, context);
    const settled = run
      .catch((err: unknown): TaskOutcome | "cancelled" => {
        if (controller.signal.aborted) return "cancelled";
        // A bug, not the repository's fault: say so rather than leave the service waiting.
        const error = `internal error in the agent: ${err instanceof Error ? err.message : String(err)}`;
        log("error", `task ${task.taskId}: ${error}`);
        if (task.type === "evaluate") {
          link.send({ type: "evaluation-done", taskId: task.taskId, batches: stream!.batches, status: "failed", error: error.slice(0, 8000) });
          return { status: "failed", error };
        }
        link.send({ type: "build-result", taskId: task.taskId, drvPath: task.drvPath, status: "exceptional", error: error.slice(0, 8000) });
        return { status: "exceptional", error };
      })
      .then((outcome) => {
        this.running.delete(task.taskId);
        const finished: TaskFinished =
          outcome === "cancelled"
            ? { taskId: task.taskId, kind, status: "cancelled", durationMs: Date.now() - started }
            : { taskId: task.taskId, kind, ...outcome, durationMs: Date.now() - started };
        log(
          finished.status === "succeeded" || finished.status === "cancelled" ? "info" : "warn",
          `task ${task.taskId}: ${finished.status} in ${(finished.durationMs / 1000).toFixed(1)} s${finished.error ? ` — ${firstLine(finished.error)}` : ""}`,
        );
        this.options.onFinished?.(finished);
      });
    this.running.set(task.taskId, { kind, controller, stream, settled });
  }
}

/** Task ids may be "." or ".."; they must not name the parent directory. */
export function directoryName(taskId: string): string {
  return /^\.+$/.test(taskId) ? `_${taskId}` : taskId;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}
