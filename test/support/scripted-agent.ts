import WebSocket from "ws";
import {
  PROTOCOL_VERSION,
  ServiceMessage,
  type AgentInfo,
  type BuildTask,
  type EvaluateTask,
  type EvaluationEvent,
} from "@nimbus/protocol";
import { agentInfo } from "./raw-agent.ts";

export interface BuildOutcome {
  status: "succeeded" | "failed" | "exceptional";
  exitCode?: number;
  log?: string[];
}

/**
 * A protocol-level agent (no Nix): evaluates by replaying a scripted event list, builds by
 * answering at once with the scripted outcome. It records every task it was given.
 */
export class ScriptedAgent {
  readonly builds: BuildTask[] = [];
  readonly evaluations: EvaluateTask[] = [];
  running = 0;
  maxRunning = 0;
  connectionId?: string;
  private socket?: WebSocket;

  constructor(
    readonly name: string,
    readonly info: AgentInfo,
    private readonly script: {
      evaluate?: (task: EvaluateTask) => EvaluationEvent[];
      build?: (task: BuildTask) => BuildOutcome;
      /** How long a build "takes". */
      buildMs?: number;
      /** A pause between evaluation batches (of 3 events). */
      batchDelayMs?: number;
    },
  ) {}

  static create(name: string, overrides: Partial<AgentInfo>, script: ScriptedAgent["script"]) {
    return new ScriptedAgent(name, agentInfo({ hostname: name, labels: { name }, ...overrides }), script);
  }

  connect(url: string, token: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
      this.socket = socket;
      socket.once("error", reject);
      socket.once("open", () => socket.send(JSON.stringify({ type: "hello", protocolVersion: PROTOCOL_VERSION, agent: this.info, tasksInProgress: [] })));
      socket.on("message", (data) => {
        const message = ServiceMessage.parse(JSON.parse(data.toString()));
        if (message.type === "welcome") {
          this.connectionId = message.connectionId;
          resolve();
        } else if (message.type === "evaluate") void this.evaluate(message);
        else if (message.type === "build") void this.build(message);
      });
    });
  }

  private send(message: unknown) {
    this.socket?.send(JSON.stringify(message));
  }

  private track(delta: number) {
    this.running += delta;
    this.maxRunning = Math.max(this.maxRunning, this.running);
  }

  private async evaluate(task: EvaluateTask) {
    this.evaluations.push(task);
    this.track(1);
    const events = this.script.evaluate?.(task) ?? [];
    let batches = 0;
    for (let i = 0; i < events.length; i += 3) {
      this.send({ type: "evaluation-events", taskId: task.taskId, seq: batches++, events: events.slice(i, i + 3) });
      if (this.script.batchDelayMs) await new Promise((r) => setTimeout(r, this.script.batchDelayMs));
    }
    await new Promise((r) => setTimeout(r, 20));
    this.track(-1);
    this.send({ type: "evaluation-done", taskId: task.taskId, batches, status: "succeeded" });
  }

  private async build(task: BuildTask) {
    this.builds.push(task);
    this.track(1);
    const outcome = this.script.build?.(task) ?? { status: "succeeded" };
    this.send({ type: "build-log", taskId: task.taskId, seq: 0, lines: outcome.log ?? [`building ${task.drvPath}`] });
    await new Promise((r) => setTimeout(r, this.script.buildMs ?? 10));
    this.track(-1);
    this.send({
      type: "build-result",
      taskId: task.taskId,
      drvPath: task.drvPath,
      status: outcome.status,
      ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
      logTail: outcome.log ?? [],
      ...(outcome.status === "succeeded" ? { outputs: { out: task.drvPath.replace(/\.drv$/, "-out") } } : {}),
    });
  }

  close() {
    this.socket?.close(1000);
  }
}
