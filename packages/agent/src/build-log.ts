/**
 * A build's output as numbered `build-log` batches: the first after 1 s, or 1 s after Nix is done
 * when the outputs go up (a short build's whole log then goes in one batch, carried by its
 * result), then every 250 ms, or sooner when a
 * batch is full (1000 lines or one frame); the last lines are kept for the result's `logTail`.
 */
import type { BuildLog, EffectLog, LogBatch } from "@nimbus/protocol";
import { FRAME_BUDGET_BYTES, jsonBytes, truncateText } from "./message-size.ts";
import type { Link } from "./outbox.ts";

const MAX_LINES_PER_BATCH = 1000;
const MAX_LINE_CHARS = 4096;
const TAIL_LINES = 50;
/** The tail shares its frame with the result's error message and outputs. */
const TAIL_BYTES = 16 * 1024;

export class BuildLogStream {
  private pending: string[] = [];
  private pendingBytes: number;
  private seq = 0;
  private sent = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly tail: string[] = [];
  private readonly envelopeBytes: number;

  constructor(
    private readonly link: Link,
    private readonly taskId: string,
    private readonly flushMs = 250,
    private readonly firstFlushMs = 1000,
    /** An effect's log goes as `effect-log` batches, the same way. */
    private readonly type: "build-log" | "effect-log" = "build-log",
  ) {
    this.envelopeBytes = jsonBytes({ type, taskId, seq: Number.MAX_SAFE_INTEGER, lines: [] });
    this.pendingBytes = this.envelopeBytes;
  }

  line(text: string): void {
    const line = truncateText(text, MAX_LINE_CHARS, FRAME_BUDGET_BYTES - this.envelopeBytes - 16);
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    const bytes = jsonBytes(line) + 1;
    if (this.pending.length >= MAX_LINES_PER_BATCH || this.pendingBytes + bytes > FRAME_BUDGET_BYTES) this.flush();
    this.pending.push(line);
    this.pendingBytes += bytes;
    this.timer ??= setTimeout(() => this.flush(), this.sent ? this.flushMs : this.firstFlushMs);
  }

  /**
   * Nix is done and the outputs go up: a log not sent yet waits another `firstFlushMs`, so a
   * short build's and a short push's lines go in one batch with the result (each batch is a
   * frame and a stored chunk) rather than the build's alone while the push runs.
   */
  pushing(): void {
    if (this.sent || this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.firstFlushMs);
  }

  /**
   * The batch not sent yet, for the result to carry instead of a `build-log` frame of its own
   * (a short build's whole log: one frame per build fewer), when it fits in `budgetBytes`;
   * undefined when nothing is pending or it does not fit — then `flush()` sends it first.
   */
  lastBatch(budgetBytes: number): LogBatch | undefined {
    if (this.pending.length === 0) return undefined;
    const batch: LogBatch = { seq: this.seq, lines: this.pending };
    // The field's key and comma beside the batch itself.
    if (jsonBytes(batch) + jsonBytes("log") + 2 > budgetBytes) return undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.pendingBytes = this.envelopeBytes;
    this.seq++;
    this.sent = true;
    return batch;
  }

  /** Sends what is pending; call before the result so the log comes first. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const message: BuildLog | EffectLog = { type: this.type, taskId: this.taskId, seq: this.seq++, lines: this.pending };
    this.pending = [];
    this.pendingBytes = this.envelopeBytes;
    this.sent = true;
    this.link.send(message);
  }

  /** The last lines (at most 50, and small enough to travel with the result). */
  logTail(): string[] {
    const lines: string[] = [];
    let bytes = 0;
    for (let i = this.tail.length - 1; i >= 0; i--) {
      const line = truncateText(this.tail[i]!, MAX_LINE_CHARS, 2048);
      bytes += jsonBytes(line) + 1;
      if (bytes > TAIL_BYTES) break;
      lines.unshift(line);
    }
    return lines;
  }
}
