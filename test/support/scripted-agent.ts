import WebSocket from "ws";
import { ServiceMessage, type AgentInfo, type BuildTask, type CacheReport, type EvaluateTask, type EvaluationEvent } from "@nimbus/protocol";
import { agentInfo, hello, newSession } from "./raw-agent.ts";

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

export interface BuildOutcome {
  status: "succeeded" | "failed" | "exceptional";
  exitCode?: number;
  log?: string[];
  /** Lines printed while it builds, one `build-log` batch each, `everyMs` apart, after `log`. */
  stream?: { lines: string[]; everyMs: number };
  /** What became of each push cache (`build-result.caches`). */
  caches?: CacheReport[];
}

/**
 * A protocol-level agent (no Nix): evaluates by replaying a scripted event list, builds by
 * answering with the scripted outcome after `buildMs`. It keeps one session across
 * reconnects, re-sends unacknowledged results, and records every task it was given.
 */
export class ScriptedAgent {
  readonly builds: BuildTask[] = [];
  readonly evaluations: EvaluateTask[] = [];
  readonly cancelled: string[] = [];
  /** Derivations whose (succeeded or failed) build result the service acknowledged: settled by this agent. */
  readonly settled: string[] = [];
  /** The task ids of `settled`, in the same order. */
  readonly settledTasks: string[] = [];
  /** Messages the service refused as not this agent's (duplicates absorbed). */
  refused = 0;
  /** Frames that were not protocol messages: the gateway's answer when a handler failed. */
  gatewayErrors = 0;
  running = 0;
  maxRunning = 0;
  connectionId?: string;
  session = newSession();
  private socket?: WebSocket;
  private readonly active = new Set<string>();
  /** Final messages not yet acknowledged, by task id. */
  private readonly unacked = new Map<string, unknown>();
  /** The derivation a build task's result settles (none for an exceptional result: it is retried). */
  private readonly settles = new Map<string, string>();
  /** Evaluation batches acknowledged, by task: the agent keeps at most 4 unacknowledged, like the real one. */
  private readonly acked = new Map<string, Set<number>>();
  /** Evaluation batches sent and not yet acknowledged, re-sent after every welcome. */
  private readonly pendingBatches = new Map<string, unknown>();
  /** When each unacknowledged message was last sent. */
  private readonly lastSent = new WeakMap<object, number>();
  private heartbeat?: NodeJS.Timeout;
  private resender?: NodeJS.Timeout;
  /** Bumped by kill() and close(): work started before it never reports. */
  private generation = 0;
  /** The pauses of work in progress, cleared by kill() and close() so no ended agent keeps a test process alive. */
  private readonly pauses = new Set<NodeJS.Timeout>();

  constructor(
    readonly name: string,
    public info: AgentInfo,
    private readonly script: {
      evaluate?: (task: EvaluateTask) => EvaluationEvent[];
      /** What became of each cache during an evaluation (`evaluation-done.caches`). */
      evaluationCaches?: (task: EvaluateTask) => CacheReport[] | undefined;
      build?: (task: BuildTask) => BuildOutcome;
      /** How long a build "takes". */
      buildMs?: number;
      /** A pause between evaluation batches. */
      batchDelayMs?: number;
      /** Events per evaluation batch (default 3). */
      batchSize?: number;
      /** Also closes a batch before it would pass this many bytes of JSON (as the real agent keeps frames small). */
      batchBytes?: number;
      /** Heartbeat period while connected (none by default). */
      heartbeatMs?: number;
      /** Sends a batch or result again when unacknowledged this long while connected (never by default). */
      resendMs?: number;
    },
  ) {}

  static create(name: string, overrides: Partial<AgentInfo>, script: ScriptedAgent["script"]) {
    return new ScriptedAgent(name, agentInfo({ hostname: name, labels: { name }, ...overrides }), script);
  }

  /**
   * Opens a connection (again) for the same session; resolves on welcome. Rejects, saying
   * why, when the upgrade fails, the connection closes or the service refuses before the
   * welcome, or no welcome comes within `timeoutMs` (a `hello` whose handler died is never
   * answered: the real agent's welcome timeout).
   */
  connect(url: string, token: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
      this.socket = socket;
      let settled = false;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.terminate();
        reject(new Error(`${this.name}: no welcome: ${why}`));
      };
      const timer = setTimeout(() => fail(`none within ${timeoutMs} ms`), timeoutMs);
      socket.once("error", (error) => fail(`connection error: ${error.message}`));
      socket.once("unexpected-response", (_request, response) => fail(`upgrade refused with HTTP ${response.statusCode}`));
      socket.once("close", (code, reason) => fail(`closed with ${code}${reason.length ? ` ${reason.toString()}` : ""} before the welcome`));
      socket.once("open", () =>
        socket.send(JSON.stringify(hello({ ...this.info }, this.session, [...this.active, ...this.unacked.keys()]))),
      );
      socket.on("message", (data) => {
        const parsed = ServiceMessage.safeParse(parseJson(data.toString()));
        // API Gateway's own "Internal server error" (a handler died): the real agent logs and ignores it.
        if (!parsed.success) return void this.gatewayErrors++;
        const message = parsed.data;
        // A build may carry acknowledgements of results: each is a `result-ack`, whatever becomes of the build.
        if (message.type === "build") for (const taskId of message.acks ?? []) this.resultAcked(taskId);
        if (message.type === "welcome") {
          settled = true;
          clearTimeout(timer);
          this.connectionId = message.connectionId;
          this.askAgainIn(socket, message.askAgainMs);
          this.resendUnacknowledged();
          clearInterval(this.heartbeat);
          clearInterval(this.resender);
          if (this.script.heartbeatMs) {
            // Tied to this socket, and never what keeps a test process alive.
            const beat = setInterval(() => {
              if (socket.readyState === WebSocket.OPEN) {
                const tasksInProgress = [...this.active, ...this.unacked.keys()];
                socket.send(JSON.stringify({ type: "heartbeat", sentAt: new Date().toISOString(), tasksInProgress }));
              }
            }, this.script.heartbeatMs).unref();
            socket.once("close", () => clearInterval(beat));
            this.heartbeat = beat;
          }
          if (this.script.resendMs) {
            // Unacknowledged batches and results go again, as the real agent's resend timer sends them.
            const every = this.script.resendMs;
            const resend = setInterval(() => this.resendUnacknowledged(every), every / 2).unref();
            socket.once("close", () => clearInterval(resend));
            this.resender = resend;
          }
          resolve();
        } else if (message.type === "error" && message.fatal && !settled) fail(`refused: ${message.code}: ${message.message}`);
        // A task whose result awaits its ack gets that result again, as the real agent does.
        else if ((message.type === "evaluate" || message.type === "build") && this.unacked.has(message.taskId)) this.send(this.unacked.get(message.taskId));
        else if (message.type === "evaluate") void this.evaluate(message);
        else if (message.type === "build") void this.build(message);
        else if (message.type === "ack") {
          if (!this.acked.has(message.taskId)) this.acked.set(message.taskId, new Set());
          this.acked.get(message.taskId)!.add(message.seq);
          this.pendingBatches.delete(`${message.taskId}#${message.seq}`);
        } else if (message.type === "result-ack") {
          this.resultAcked(message.taskId);
          this.askAgainIn(socket, message.askAgainMs);
        } else if (message.type === "cancel") {
          this.cancelled.push(message.taskId);
          this.active.delete(message.taskId);
          this.unacked.delete(message.taskId);
        } else if (message.type === "error" && message.code === "unknown-task" && message.taskId) {
          this.refused++;
          this.active.delete(message.taskId);
          this.unacked.delete(message.taskId);
        }
      });
    });
  }

  private askAgain?: NodeJS.Timeout;

  /** As the real agent: `request-work` once, `ms` after the service said its slot stayed empty (a later telling restarts the wait). */
  private askAgainIn(socket: WebSocket, ms: number | undefined) {
    if (ms === undefined) return;
    clearTimeout(this.askAgain);
    this.askAgain = setTimeout(() => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "request-work" }));
    }, ms).unref();
  }

  /** The service recorded this task's final message (a `result-ack`, or a build's `acks`). */
  private resultAcked(taskId: string) {
    const settledDrv = this.settles.get(taskId);
    if (this.unacked.delete(taskId) && settledDrv) {
      this.settled.push(settledDrv);
      this.settledTasks.push(taskId);
    }
  }

  /** Sends every unacknowledged evaluation batch and final message again (the service applies each once). */
  private resendUnacknowledged(sentBeforeMs = 0) {
    const before = Date.now() - sentBeforeMs;
    for (const message of [...this.pendingBatches.values(), ...this.unacked.values()]) {
      if ((this.lastSent.get(message as object) ?? 0) <= before) this.send(message);
    }
  }

  private send(message: unknown) {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify(message));
    this.lastSent.set(message as object, Date.now());
  }

  /** Sends a task's final message and keeps it until the service acknowledges it. */
  private finish(taskId: string, message: unknown) {
    if (!this.active.delete(taskId)) return; // cancelled meanwhile
    this.unacked.set(taskId, message);
    this.send(message);
  }

  private track(delta: number) {
    this.running += delta;
    this.maxRunning = Math.max(this.maxRunning, this.running);
  }

  private async evaluate(task: EvaluateTask) {
    if (this.active.has(task.taskId)) return;
    this.evaluations.push(task);
    this.active.add(task.taskId);
    this.track(1);
    const events = this.script.evaluate?.(task) ?? [];
    const generation = this.generation;
    // Killed, cancelled or refused: this evaluation is over here.
    const abandoned = () => generation !== this.generation || !this.active.has(task.taskId);
    let batches = 0;
    const unacked = () => batches - (this.acked.get(task.taskId)?.size ?? 0);
    const waitForAcks = async (most: number) => {
      while (unacked() > most && !abandoned()) await this.pause(5);
    };
    for (const slice of this.batchesOf(events)) {
      if (abandoned()) break;
      await waitForAcks(3);
      const batch = { type: "evaluation-events", taskId: task.taskId, seq: batches++, events: slice };
      this.pendingBatches.set(`${task.taskId}#${batch.seq}`, batch);
      this.send(batch);
      if (this.script.batchDelayMs) await this.pause(this.script.batchDelayMs);
    }
    await waitForAcks(0);
    if (abandoned()) return;
    await this.pause(20);
    this.track(-1);
    const caches = this.script.evaluationCaches?.(task);
    this.finish(task.taskId, { type: "evaluation-done", taskId: task.taskId, batches, status: "succeeded", ...(caches ? { caches } : {}) });
  }

  /** Waits `ms`; after kill() or close() it never resolves, and the work waiting on it ends there. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pauses.delete(timer);
        resolve();
      }, ms);
      this.pauses.add(timer);
    });
  }

  /** Ends the work in progress: none of it reports, and none of its timers is left running. */
  private endWork() {
    this.generation++;
    for (const timer of this.pauses) clearTimeout(timer);
    this.pauses.clear();
  }

  /** The script's events in batches: at most `batchSize` events, and at most `batchBytes` of JSON when set. */
  private batchesOf(events: EvaluationEvent[]): EvaluationEvent[][] {
    const size = this.script.batchSize ?? 3;
    const bytes = this.script.batchBytes ?? Infinity;
    const batches: EvaluationEvent[][] = [];
    let current: EvaluationEvent[] = [];
    let currentBytes = 0;
    for (const event of events) {
      const eventBytes = JSON.stringify(event).length + 1;
      if (current.length > 0 && (current.length >= size || currentBytes + eventBytes > bytes)) {
        batches.push(current);
        current = [];
        currentBytes = 0;
      }
      current.push(event);
      currentBytes += eventBytes;
    }
    if (current.length > 0) batches.push(current);
    return batches;
  }

  private async build(task: BuildTask) {
    if (this.active.has(task.taskId)) return;
    const generation = this.generation;
    this.builds.push(task);
    this.active.add(task.taskId);
    this.track(1);
    const outcome = this.script.build?.(task) ?? { status: "succeeded" };
    if (outcome.status !== "exceptional") this.settles.set(task.taskId, task.drvPath);
    this.send({ type: "build-log", taskId: task.taskId, seq: 0, lines: outcome.log ?? [`building ${task.drvPath}`] });
    for (const [i, line] of (outcome.stream?.lines ?? []).entries()) {
      await this.pause(outcome.stream!.everyMs);
      if (generation !== this.generation || !this.active.has(task.taskId)) return;
      this.send({ type: "build-log", taskId: task.taskId, seq: i + 1, lines: [line] });
    }
    await this.pause(this.script.buildMs ?? 10);
    if (generation !== this.generation) return;
    this.track(-1);
    this.finish(task.taskId, {
      type: "build-result",
      taskId: task.taskId,
      drvPath: task.drvPath,
      status: outcome.status,
      ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
      logTail: [...(outcome.log ?? []), ...(outcome.stream?.lines ?? [])].slice(-20),
      ...(outcome.status === "succeeded" ? { outputs: { out: task.drvPath.replace(/\.drv$/, "-out") } } : {}),
      ...(outcome.caches ? { caches: outcome.caches } : {}),
    });
  }

  /** Whether it runs the task or waits for its result's acknowledgement (what it lists in heartbeats). */
  holds(taskId: string): boolean {
    return this.active.has(taskId) || this.unacked.has(taskId);
  }

  /** Its info changed (as on SIGHUP): tells the service with `agent-info`. */
  changeInfo(overrides: Partial<AgentInfo>) {
    this.info = { ...this.info, ...overrides };
    this.send({ type: "agent-info", agent: this.info });
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Drops the connection without a goodbye (the session stays; running work goes on). */
  drop() {
    clearInterval(this.heartbeat);
    clearInterval(this.resender);
    this.socket?.terminate();
  }

  /** A crash: the connection and everything in memory are gone. `newSession` also loses the work directory. */
  kill(options: { newSession?: boolean } = {}) {
    this.endWork();
    this.drop();
    this.active.clear();
    this.unacked.clear();
    this.pendingBatches.clear();
    this.running = 0;
    if (options.newSession) this.session = newSession();
  }

  /** Leaves for good: the connection closes and work in progress ends unreported. */
  close() {
    this.endWork();
    clearInterval(this.heartbeat);
    clearInterval(this.resender);
    this.socket?.close(1000);
  }
}
