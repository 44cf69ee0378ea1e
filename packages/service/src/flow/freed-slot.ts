/**
 * The slot a `build-result` frees, handed on rather than given back when the same invocation
 * gives its agent the next task (a hand-over, or a dispatch to the reporter): one Sessions write
 * instead of a release and a reservation, and the agent never looks idle to other handlers in
 * between (docs/reliability.md, "A slot handed on"). Given back only when nothing took it.
 */
import type { SessionFields } from "../storage/items.ts";
import { handOverSlot, releaseTaskReturning, reserveTask, type HeldTaskRecord } from "../storage/sessions.ts";

export class FreedSlot {
  private state: "held" | "handed" | "released" = "held";
  private released: Promise<SessionFields | undefined> | undefined;

  /** `session` as the frame read it, holding `taskId` with its slot counted (not `pushing`). */
  constructor(
    private readonly session: SessionFields,
    readonly taskId: string,
  ) {}

  /** The session's load with this slot free, as nothing has been written yet: what a dispatch to it plans with. */
  get load(): SessionFields {
    return { ...this.session, runningTasks: this.session.runningTasks - 1, ...(this.session.idleSlots === undefined ? {} : { idleSlots: this.session.idleSlots + 1 }) };
  }

  /** Whether the finished task still holds the slot (neither handed on nor given back). */
  get held(): boolean {
    return this.state === "held";
  }

  /**
   * Takes a slot for `to`: this one, handed on in one write, while the finished task holds it;
   * otherwise (or when that write is refused: the session changed) a reservation as any other,
   * after the finished task's slot is given back. False when no slot could be had.
   */
  async reserve(to: string, task: HeldTaskRecord, limit: number): Promise<boolean> {
    if (this.state === "held") {
      // The finished task's own message come again (delivered twice) cannot take its slot over in one write:
      // the write's two paths would be the same. Given back, then reserved as any other (its lease then finds it stale).
      if (to !== this.taskId) {
        this.state = "handed";
        if (await handOverSlot(this.session.sessionId, this.taskId, to, task, limit)) return true;
      }
      this.state = "released";
      this.released = releaseTaskReturning(this.session.sessionId, this.taskId);
      await this.released;
    }
    return reserveTask(this.session.sessionId, to, task, limit);
  }

  /**
   * Gives the slot back unless it was handed on (once: later calls return the same write).
   * Returns the session's load after the release; undefined when it was handed on, or the
   * session no longer held the task.
   */
  release(): Promise<SessionFields | undefined> {
    if (this.state === "held") {
      this.state = "released";
      this.released = releaseTaskReturning(this.session.sessionId, this.taskId);
    }
    return this.released ?? Promise.resolve(undefined);
  }
}
