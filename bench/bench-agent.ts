/**
 * A protocol-level agent for the benchmark (a real WebSocket client, no Nix): it evaluates by
 * replaying the workload's events in acknowledged batches, and "builds" by answering every
 * `build` at once with a success. It records when each task arrived, on this process's clock.
 */
import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { Hello, PROTOCOL_VERSION, ServiceMessage, type AgentInfo, type BuildTask, type EvaluateTask, type EvaluationEvent } from "@nimbus/protocol";
import { batchEvents } from "./workload.ts";

/** Batches an evaluation may have sent and not yet seen acknowledged. */
export const MAX_UNACKED_BATCHES = 4;

export interface ReceivedBuild {
  drvPath: string;
  taskId: string;
  agent: string;
  /** `Date.now()` when the `build` message arrived. */
  receivedAt: number;
}

export interface EvaluationTiming {
  agent: string;
  jobId: string;
  batches: number;
  events: number;
  /** When the `evaluate` task arrived, the last batch's ack arrived, and `evaluation-done` went out. */
  receivedAt: number;
  /** Batches acknowledged so far (ingest progress). */
  acked: number;
  lastAckAt?: number;
  doneAt?: number;
}

/** What the agents saw that an agent would complain about. */
export interface AgentProblem {
  agent: string;
  at: number;
  what: string;
}

export interface BenchAgentShape {
  name: string;
  systems: string[];
  systemFeatures: string[];
  concurrentTasks: number;
}

export class BenchAgent {
  readonly info: AgentInfo;
  readonly builds: ReceivedBuild[] = [];
  readonly evaluations: EvaluationTiming[] = [];
  readonly problems: AgentProblem[] = [];
  connectionId?: string;
  private socket?: WebSocket;
  private ackWaiters = new Map<string, () => void>();

  constructor(
    readonly shape: BenchAgentShape,
    /** What this agent reports when asked to evaluate (every agent may be the one asked). */
    private readonly evaluationEvents: readonly EvaluationEvent[],
    /** How long each "build" takes before its success is sent (0: at once, a saturating agent). */
    private readonly buildMs = 0,
  ) {
    this.info = {
      hostname: shape.name,
      agentVersion: "bench",
      nixVersion: "2.8.0",
      systems: shape.systems,
      systemFeatures: shape.systemFeatures,
      mandatoryFeatures: [],
      substituters: [],
      pushCaches: [],
      concurrentTasks: shape.concurrentTasks,
      labels: { bench: true },
    };
  }

  get name(): string {
    return this.shape.name;
  }

  /** Opens the socket, says hello and resolves on `welcome`. */
  connect(url: string, token: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent ${this.name}: no welcome within ${timeoutMs} ms`)), timeoutMs);
      const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
      this.socket = socket;
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once("open", () => this.send(this.hello()));
      socket.on("close", (code, reason) => {
        if (code !== 1000) this.problem(`socket closed with ${code} ${reason.toString()}`);
      });
      socket.on("message", (data) => {
        const receivedAt = Date.now();
        const text = data.toString();
        let parsed: ReturnType<typeof ServiceMessage.safeParse>;
        try {
          parsed = ServiceMessage.safeParse(JSON.parse(text));
        } catch {
          this.problem(`unparseable message: ${text.slice(0, 200)}`);
          return;
        }
        if (!parsed.success) {
          // e.g. API Gateway's {"message": "Internal server error", ...} when a handler throws.
          this.problem(`not a service message: ${text.slice(0, 200)}`);
          return;
        }
        const message = parsed.data;
        switch (message.type) {
          case "welcome":
            this.connectionId = message.connectionId;
            clearTimeout(timer);
            this.askAgainIn(message.askAgainMs);
            resolve();
            break;
          case "result-ack":
            this.askAgainIn(message.askAgainMs);
            break;
          case "build":
            this.build(message, receivedAt);
            break;
          case "evaluate":
            void this.evaluate(message, receivedAt).catch((error: unknown) => this.problem(`evaluation failed: ${String(error)}`));
            break;
          case "ack":
            this.ackWaiters.get(`${message.taskId}#${message.seq}`)?.();
            break;
          case "error":
            this.problem(`error ${message.code}: ${message.message}`);
            break;
          case "heartbeat-ack":
            break;
          default: {
            // Newer protocol messages: acknowledgements are expected, anything else is worth telling.
            const type = (message as { type: string }).type;
            if (type !== "result-ack") this.problem(`unexpected ${type}: ${text.slice(0, 200)}`);
          }
        }
      });
    });
  }

  /** `hello`, with a fresh agent session when this protocol version asks for one. */
  private hello() {
    const session = "session" in Hello.shape ? { session: { id: randomBytes(16).toString("hex"), secret: randomBytes(32).toString("base64url") } } : {};
    return { type: "hello", protocolVersion: PROTOCOL_VERSION, agent: this.info, ...session, tasksInProgress: [] };
  }

  private send(message: unknown): void {
    this.socket?.send(JSON.stringify(message));
  }

  private problem(what: string): void {
    this.problems.push({ agent: this.name, at: Date.now(), what });
  }

  private build(task: BuildTask, receivedAt: number): void {
    this.builds.push({ drvPath: task.drvPath, taskId: task.taskId, agent: this.name, receivedAt });
    const answer = () =>
      this.send({
        type: "build-result",
        taskId: task.taskId,
        drvPath: task.drvPath,
        status: "succeeded",
        outputs: { out: task.drvPath.replace(/\.drv$/, "") },
        logTail: [],
      });
    if (this.buildMs > 0) setTimeout(answer, this.buildMs);
    else answer();
  }

  private askAgain?: NodeJS.Timeout;

  /** As the real agent: `request-work` once, `ms` after the service said its slot stayed empty (a later telling restarts the wait). */
  private askAgainIn(ms: number | undefined): void {
    if (ms === undefined) return;
    clearTimeout(this.askAgain);
    this.askAgain = setTimeout(() => this.requestWork(), ms).unref();
  }

  /** Asks for work (`request-work`), as an idle agent does after a while. */
  requestWork(): void {
    this.send({ type: "request-work" });
  }

  /** Sends every batch, never more than MAX_UNACKED_BATCHES unacknowledged, then `evaluation-done`. */
  private async evaluate(task: EvaluateTask, receivedAt: number): Promise<void> {
    const batches = batchEvents(task.taskId, this.evaluationEvents);
    const timing: EvaluationTiming = { agent: this.name, jobId: task.jobId, batches: batches.length, events: this.evaluationEvents.length, receivedAt, acked: 0 };
    this.evaluations.push(timing);
    const unacked = new Set<Promise<void>>();
    for (const [seq, events] of batches.entries()) {
      while (unacked.size >= MAX_UNACKED_BATCHES) await Promise.race(unacked);
      const acked: Promise<void> = new Promise<void>((resolve) => this.ackWaiters.set(`${task.taskId}#${seq}`, resolve)).then(() => {
        this.ackWaiters.delete(`${task.taskId}#${seq}`);
        unacked.delete(acked);
        timing.lastAckAt = Date.now();
        timing.acked++;
      });
      unacked.add(acked);
      this.send({ type: "evaluation-events", taskId: task.taskId, seq, events });
    }
    await Promise.all(unacked);
    this.send({ type: "evaluation-done", taskId: task.taskId, batches: batches.length, status: "succeeded" });
    timing.doneAt = Date.now();
  }

  close(): void {
    this.socket?.close(1000);
  }
}
