/**
 * Each task's result message (its kind's `resultType`: `build-result`, `evaluation-done`) until
 * the service answers `result-ack` (or a `build` carries it in `acks`): sent at once when connected,
 * and again after every welcome.
 * The service records a result once and acknowledges every copy.
 */
import type { Link } from "./outbox.ts";
import type { TaskReport } from "./tasks/task-kind.ts";

export class UnackedResults {
  private readonly pending = new Map<string, TaskReport>();

  /** `onChange` is told whether the change was an acknowledgement. */
  constructor(private readonly onChange: (acknowledged: boolean) => void = () => {}) {}

  /** Keeps the message until acknowledged and sends it now if the agent is connected. */
  send(link: Link, message: TaskReport): void {
    this.pending.set(message.taskId, message);
    link.sendNow(message);
    this.onChange(false);
  }

  /** The service recorded it; false if it was not waiting (a duplicate ack). */
  ack(taskId: string): boolean {
    const had = this.pending.delete(taskId);
    if (had) this.onChange(true);
    return had;
  }

  /** Forgets it unsent (the service does not want it). */
  drop(taskId: string): boolean {
    const had = this.pending.delete(taskId);
    if (had) this.onChange(false);
    return had;
  }

  has(taskId: string): boolean {
    return this.pending.has(taskId);
  }

  /** After a welcome: every one (or the one of `taskId`) again, oldest first; stops at the first that cannot go out. */
  resend(link: Link, taskId?: string): void {
    for (const message of this.pending.values()) {
      if (taskId !== undefined && message.taskId !== taskId) continue;
      if (!link.sendNow(message)) return;
    }
  }

  ids(): string[] {
    return [...this.pending.keys()];
  }

  get size(): number {
    return this.pending.size;
  }
}
