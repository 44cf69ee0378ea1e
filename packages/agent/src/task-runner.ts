/**
 * Runs every task the service pushes, all at once (the service enforces `concurrentTasks`),
 * routes `ack`s to evaluation streams and `result-ack`s (alone, or carried by a `build`'s
 * `acks`) to the kept final messages, stops tasks the service cancels or disowns, and kills
 * everything when the agent leaves.
 */
import type { ResultAck, StreamAck } from "@nimbus/protocol";
import { AckedStream } from "./acked-stream.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { EvaluationPolicy } from "./evaluation-isolation.ts";
import type { Logger } from "./log.ts";
import type { NixEnvironment } from "./nix-options.ts";
import type { Link } from "./outbox.ts";
import { kindOf, type TaskKindName } from "./tasks/registry.ts";
import { directoryName, type EffectPolicy, type TaskCaches, type TaskContext, type TaskMessage, type TaskOutcome } from "./tasks/task-kind.ts";
import { UnackedResults } from "./unacked-results.ts";

export interface TaskStarted {
  taskId: string;
  kind: TaskKindName;
}

export interface TaskFinished {
  taskId: string;
  kind: TaskKindName;
  /**
   * `cancelled`: the task was stopped — cancelled by the service, disowned by it
   * (`unknown-task`), or handed back when the agent left — and nothing more was sent for it.
   */
  status: TaskOutcome["status"] | "cancelled";
  /** Why it failed, or why it was stopped. */
  error?: string;
  durationMs: number;
}

/** The outbox as the runner needs it: a link that can also forget a task's queued messages. */
export interface TaskLink extends Link {
  drop(taskId: string): number;
}

export interface TaskRunnerOptions {
  workDirectory: string;
  /** The agent's `apiBaseUrl`: `herculesCI.apiBaseUrl` for the evaluated code. */
  apiBaseUrl: string;
  /** Read as each task starts: a reload (SIGHUP) changes them for the tasks that start after it. */
  nix: () => NixEnvironment;
  caches: () => TaskCaches;
  evaluation: EvaluationPolicy;
  effects: EffectPolicy;
  link: TaskLink;
  log: Logger;
  clock: Clock;
  onStarted?: (event: TaskStarted) => void;
  onFinished?: (event: TaskFinished) => void;
  /** After any change to the running tasks or the unacknowledged results. */
  onChange?: () => void;
  /** After a batch or result was sent (`progressed` false), acknowledged (true) or forgotten (false). */
  onAcks?: (progressed: boolean) => void;
}

interface Running {
  controller: AbortController;
  stream: AckedStream;
  settled: Promise<void>;
  /** Set when the task is stopped on purpose: from then on nothing it sends goes out. */
  stopped: string | undefined;
}

/** Why a task was stopped, as its abort reason. */
export class TaskStopped extends Error {
  override readonly name = "TaskStopped";
}

export class TaskRunner {
  private readonly running = new Map<string, Running>();
  readonly results: UnackedResults;
  private accepting = true;

  constructor(private readonly options: TaskRunnerOptions) {
    this.results = new UnackedResults((acknowledged) => {
      this.options.onChange?.();
      this.options.onAcks?.(acknowledged);
    });
  }

  /** Batches and final messages sent and not yet acknowledged. */
  outstanding(): number {
    let batches = 0;
    for (const task of this.running.values()) batches += task.stream.waiting;
    return batches + this.results.size;
  }

  /** Ids of the tasks running now. */
  inProgress(): string[] {
    return [...this.running.keys()];
  }

  /**
   * What `hello` lists: the tasks running, then those whose final message the service has not
   * acknowledged. The service keeps these for the session and hands back the rest.
   */
  held(): string[] {
    return [...new Set([...this.running.keys(), ...this.results.ids()])];
  }

  /** Nothing running and every final message acknowledged. */
  idle(): boolean {
    return this.running.size === 0 && this.results.size === 0;
  }

  handle(message: TaskMessage | StreamAck | ResultAck): void {
    const { log } = this.options;
    if (message.type === "ack") {
      this.running.get(message.taskId)?.stream.ack(message.seq);
      return;
    }
    if (message.type === "result-ack") {
      this.ackResult(message.taskId);
      return;
    }
    // A build may carry acknowledgements of results, each exactly a `result-ack` (first: whatever becomes of the build).
    if (message.type === "build") for (const taskId of message.acks ?? []) this.ackResult(taskId);
    if (!this.accepting) {
      log("warn", `task ${message.taskId} not started: the agent is leaving (its goodbye hands the task back)`);
      return;
    }
    if (this.running.has(message.taskId)) {
      // The service sent it again (e.g. after a reconnect): it is already running.
      log("info", `task ${message.taskId} is already running`);
      return;
    }
    if (this.results.has(message.taskId)) {
      // It ended here and its result awaits the service's ack: the result again, not the work.
      log("info", `task ${message.taskId} already ended here; sending its result again`);
      this.results.resend(this.options.link, message.taskId);
      return;
    }
    this.start(message);
  }

  private ackResult(taskId: string): void {
    if (this.results.ack(taskId)) this.options.log("debug", `task ${taskId}: result acknowledged`);
  }

  /**
   * Stops a task for good: kills it if it runs, and forgets everything not yet sent for it (log
   * lines, evaluation batches, its final message). False if the agent knew nothing of it.
   */
  cancel(taskId: string, why: string): boolean {
    const task = this.running.get(taskId);
    const hadResult = this.results.drop(taskId);
    this.options.link.drop(taskId);
    if (task !== undefined) this.halt(task, why);
    return task !== undefined || hadResult;
  }

  /** No new tasks from now on (the agent is leaving); running ones go on. */
  pause(): void {
    this.accepting = false;
  }

  /** Stops every running task (nothing more is sent for them); returns their ids. */
  abandonAll(why: string): string[] {
    this.accepting = false;
    const ids = this.inProgress();
    for (const task of this.running.values()) this.halt(task, why);
    return ids;
  }

  /** Resolves once no task runs, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    const all = [...this.running.values()].map((t) => t.settled);
    if (all.length === 0) return;
    const { clock } = this.options;
    let timer: TimerHandle | undefined;
    await Promise.race([Promise.all(all), new Promise((resolve) => (timer = clock.setTimeout(() => resolve(undefined), timeoutMs)))]);
    clock.clearTimeout(timer);
  }

  /** After a welcome: evaluation batches the service has not acknowledged, again. */
  resendUnacked(): void {
    for (const task of this.running.values()) task.stream.resend();
  }

  /** After a welcome (and after the queued log lines): every unacknowledged final message again. */
  resendResults(): void {
    this.results.resend(this.options.link);
  }

  /** Kills every task and waits for them to end, at most `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.abandonAll("the agent is stopping");
    await this.settled(timeoutMs);
  }

  private halt(task: Running, why: string): void {
    if (task.stopped !== undefined) return;
    task.stopped = why;
    task.stream.clear();
    task.controller.abort(new TaskStopped(why));
  }

  private start(task: TaskMessage): void {
    const { log, link } = this.options;
    const kind = kindOf(task);
    const controller = new AbortController();
    // What the task sends, unless it was stopped; its result message is kept until acknowledged.
    const taskLink: Link = {
      send: (message) => {
        if (entry.stopped !== undefined) return;
        if (message.type === kind.resultType && "taskId" in message) this.results.send(link, message);
        else link.send(message);
      },
      sendNow: (message) => entry.stopped !== undefined || link.sendNow(message),
    };
    const stream = new AckedStream(taskLink, task.taskId, controller.signal, undefined, (progressed) => this.options.onAcks?.(progressed));
    const entry: Running = { controller, stream, settled: Promise.resolve(), stopped: undefined };
    const context: TaskContext = {
      directoryName: directoryName(task.taskId),
      workDirectory: this.options.workDirectory,
      apiBaseUrl: this.options.apiBaseUrl,
      nix: this.options.nix(),
      caches: this.options.caches(),
      evaluation: this.options.evaluation,
      effects: this.options.effects,
      clock: this.options.clock,
      link: taskLink,
      acked: entry.stream,
      log,
      signal: controller.signal,
    };
    const started = this.options.clock.now();
    log("info", `task ${task.taskId}: ${kind.describe(task)}`);
    this.options.onStarted?.({ taskId: task.taskId, kind: task.type });

    entry.settled = kind
      .run(task, context)
      .catch((err: unknown): TaskOutcome | "cancelled" => {
        if (controller.signal.aborted) return "cancelled";
        // A bug, not the repository's fault: say so rather than leave the service waiting.
        const error = `internal error in the agent: ${err instanceof Error ? err.message : String(err)}`;
        log("error", `task ${task.taskId}: ${error}`);
        const { result, outcome } = kind.internalError(task, error, context);
        taskLink.send(result);
        return outcome;
      })
      .then((outcome) => {
        this.running.delete(task.taskId);
        // Batches still unacknowledged go with the task (it threw): they are not waited for any more.
        if (entry.stream.waiting > 0) this.options.onAcks?.(false);
        const durationMs = this.options.clock.now() - started;
        const finished: TaskFinished =
          outcome === "cancelled" || entry.stopped !== undefined
            ? { taskId: task.taskId, kind: task.type, status: "cancelled", ...(entry.stopped ? { error: entry.stopped } : {}), durationMs }
            : { taskId: task.taskId, kind: task.type, ...outcome, durationMs };
        log(
          // A stopped task was logged when it was stopped.
          finished.status === "cancelled" ? "debug" : finished.status === "succeeded" ? "info" : "warn",
          `task ${task.taskId}: ${finished.status} in ${(durationMs / 1000).toFixed(1)} s${finished.error ? ` — ${firstLine(finished.error)}` : ""}`,
        );
        this.options.onFinished?.(finished);
        this.options.onChange?.();
      });
    this.running.set(task.taskId, entry);
    this.options.onChange?.();
  }
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}
