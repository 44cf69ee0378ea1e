/**
 * A task's numbered batches (an evaluation's `evaluation-events`) with back-pressure: at most
 * `window` batches await the service's `ack`; unacknowledged ones are sent again after every
 * reconnect (the service drops duplicates by task id and seq).
 */
import type { AgentMessage } from "@nimbus/protocol";
import type { Link } from "./outbox.ts";
import { encodeAgentMessage } from "./wire.ts";

export const ACK_WINDOW = 4;

/** A message numbered within its task. */
export type SequencedMessage = Extract<AgentMessage, { taskId: string; seq: number }>;

export class AckedStream {
  private readonly unacked = new Map<number, SequencedMessage>();
  private nextSeq = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly link: Link,
    private readonly taskId: string,
    private readonly signal: AbortSignal,
    private readonly window = ACK_WINDOW,
    /** After a batch is sent (false) or acknowledged (true): what the agent's ack timer watches. */
    private readonly onChange: (progressed: boolean) => void = () => {},
  ) {}

  /** Batches sent and not acknowledged. */
  get waiting(): number {
    return this.unacked.size;
  }

  /** How many batches were sent (numbered 0 … sent − 1). */
  get sent(): number {
    return this.nextSeq;
  }

  /** Waits while the window is full, then sends the batch `make` numbers (now, or at the next welcome). */
  async send(make: (seq: number) => SequencedMessage): Promise<void> {
    while (this.unacked.size >= this.window) await this.nextAck();
    const message = make(this.nextSeq);
    if (message.taskId !== this.taskId || message.seq !== this.nextSeq) {
      throw new Error(`a batch of task ${this.taskId} must carry its own task id and seq ${this.nextSeq}`);
    }
    // Throws on a batch the service would refuse, rather than waiting forever for its ack.
    encodeAgentMessage(message);
    this.nextSeq++;
    this.unacked.set(message.seq, message);
    this.link.sendNow(message);
    this.onChange(false);
  }

  /** Resolves once every batch is acknowledged. */
  async drain(): Promise<void> {
    while (this.unacked.size > 0) await this.nextAck();
  }

  ack(seq: number): void {
    if (!this.unacked.delete(seq)) return;
    this.onChange(true);
    this.wake?.();
  }

  /** Forgets the unacknowledged batches (the service does not want them any more). */
  clear(): void {
    if (this.unacked.size === 0) return;
    this.unacked.clear();
    this.onChange(false);
  }

  /** After a welcome: every unacknowledged batch again, in order. */
  resend(): void {
    for (const message of this.unacked.values()) if (!this.link.sendNow(message)) return;
  }

  private nextAck(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) {
        reject(this.signal.reason);
        return;
      }
      const onAbort = () => {
        this.wake = undefined;
        reject(this.signal.reason);
      };
      this.signal.addEventListener("abort", onAbort, { once: true });
      this.wake = () => {
        this.wake = undefined;
        this.signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }
}
