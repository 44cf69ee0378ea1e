/**
 * How tasks talk to the service without caring about reconnects: messages that cannot go out
 * now wait in memory for the next welcome. What must not be lost with a connection is kept
 * until the service acknowledges it and is sent again after every welcome: evaluation batches
 * (`AckedStream`) and each task's final message (`UnackedResults`).
 */
import type { AgentMessage } from "@nimbus/protocol";

export interface Link {
  /** Sends now, or after the next welcome if the agent is not connected. */
  send(message: AgentMessage): void;
  /** Sends now if connected; false if not (the caller resends after the next welcome). */
  sendNow(message: AgentMessage): boolean;
}

/** What the outbox needs of a connection. */
export interface Sender {
  readonly connected: boolean;
  /** False when the socket is not open. */
  send(message: AgentMessage): boolean;
}

/** What the outbox holds at most while disconnected (docs/agent.md, "Results are kept until acknowledged"). */
export const OUTBOX_LIMIT_BYTES = 8 * 1024 * 1024;

interface Queued {
  message: AgentMessage;
  bytes: number;
  /** Set on the line that stands for a task's dropped log batches: how many lines they held. */
  droppedLines?: number;
}

/**
 * Messages wait here for the next welcome. Log batches are the only thing that grows with a
 * disconnection (a build keeps printing): past `limitBytes` the oldest are dropped, the first
 * of each task's replaced by one line saying how many lines went. Nothing else is dropped;
 * everything else a task sends is bounded on its own (a window of batches, one result).
 */
export class Outbox implements Link {
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private sender: Sender | undefined;
  /** Lines dropped since the last flush, for one log line then. */
  private dropped = { lines: 0, tasks: new Set<string>() };

  constructor(
    private readonly limitBytes = OUTBOX_LIMIT_BYTES,
    private readonly onDropped: (lines: number, tasks: number) => void = () => {},
  ) {}

  /** The current connection (welcomed or not yet). */
  attach(sender: Sender | undefined): void {
    this.sender = sender;
  }

  send(message: AgentMessage): void {
    if (this.sendNow(message)) return;
    const bytes = Buffer.byteLength(JSON.stringify(message));
    this.queue.push({ message, bytes });
    this.queuedBytes += bytes;
    if (this.queuedBytes > this.limitBytes) this.dropOldestLogs();
  }

  sendNow(message: AgentMessage): boolean {
    return this.sender?.connected === true && this.sender.send(message);
  }

  /** After a welcome: everything queued, in order. */
  flush(): void {
    const queued = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (let i = 0; i < queued.length; i++) {
      if (!this.sendNow(queued[i]!.message)) {
        this.queue = [...queued.slice(i), ...this.queue];
        this.queuedBytes = this.queue.reduce((sum, q) => sum + q.bytes, 0);
        return;
      }
    }
    if (this.dropped.lines > 0) {
      this.onDropped(this.dropped.lines, this.dropped.tasks.size);
      this.dropped = { lines: 0, tasks: new Set() };
    }
  }

  /** Forgets what waits for a task the service no longer wants to hear about. */
  drop(taskId: string): number {
    const before = this.queue.length;
    this.queue = this.queue.filter((q) => !("taskId" in q.message) || q.message.taskId !== taskId);
    this.queuedBytes = this.queue.reduce((sum, q) => sum + q.bytes, 0);
    return before - this.queue.length;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Bytes of the messages waiting (as JSON). */
  get bytes(): number {
    return this.queuedBytes;
  }

  private dropOldestLogs(): void {
    const markers = new Map<string, Queued>();
    for (const q of this.queue) if (q.droppedLines !== undefined && q.message.type === "build-log") markers.set(q.message.taskId, q);
    const kept: Queued[] = [];
    for (const q of this.queue) {
      const message = q.message;
      if (this.queuedBytes <= this.limitBytes || message.type !== "build-log" || q.droppedLines !== undefined) {
        kept.push(q);
        continue;
      }
      this.queuedBytes -= q.bytes;
      this.dropped.lines += message.lines.length;
      this.dropped.tasks.add(message.taskId);
      const marker = markers.get(message.taskId);
      const count = (marker?.droppedLines ?? 0) + message.lines.length;
      const replacement: Queued = {
        // Where the first dropped batch was, under its number: the log reads in order.
        message: { ...(marker?.message ?? message), lines: [droppedLine(count)] } as AgentMessage,
        bytes: 0,
        droppedLines: count,
      };
      replacement.bytes = Buffer.byteLength(JSON.stringify(replacement.message));
      if (marker === undefined) {
        kept.push(replacement);
      } else {
        kept[kept.indexOf(marker)] = replacement;
        this.queuedBytes -= marker.bytes;
      }
      this.queuedBytes += replacement.bytes;
      markers.set(message.taskId, replacement);
    }
    this.queue = kept;
  }
}

function droppedLine(lines: number): string {
  return `… ${lines} line${lines === 1 ? "" : "s"} of this log dropped: the agent was disconnected and held no more (docs/agent.md)`;
}
