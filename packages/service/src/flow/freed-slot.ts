/**
 * The slot a `build-result` (or a `build-pushing`) frees, handed on rather than given back when
 * the same invocation gives its agent the next task (a hand-over, or a dispatch to the reporter):
 * one Sessions write instead of a release and a reservation, and the agent never looks idle to
 * other handlers in between (docs/reliability.md, "A slot handed on"). Given back only when
 * nothing took it.
 */
import type { SessionFields } from "../storage/items.ts";
import { freeSlotWhilePushing, handOnPushingSlot, handOverSlot, releaseTaskReturning, reserveTask, type HeldTaskRecord } from "../storage/sessions.ts";

/** The two writes that end the finished task's hold on its slot: handing it on to `to`, or giving it back. */
interface SlotWrites {
  handOn(to: string, task: HeldTaskRecord, limit: number): Promise<SessionFields | undefined>;
  giveBack(): Promise<SessionFields | undefined>;
}

export class FreedSlot {
  private state: "held" | "handed" | "released" = "held";
  private handed: Promise<SessionFields | undefined> | undefined;
  private released: Promise<SessionFields | undefined> | undefined;
  private ended!: () => void;
  /** Settles once the finished task's hold on the slot was written: handed on, or given back (taken or refused, or failed). */
  readonly written = new Promise<void>((resolve) => (this.ended = resolve));

  /** `session` as the frame read it, holding `taskId` with its slot counted (not `pushing`): the slot its result frees. */
  constructor(
    private readonly session: SessionFields,
    readonly taskId: string,
    private readonly writes: SlotWrites = {
      handOn: (to, task, limit) => handOverSlot(session.sessionId, taskId, to, task, limit),
      giveBack: () => releaseTaskReturning(session.sessionId, taskId),
    },
    /** A refused give-back refuses the frame too (`build-pushing`): no slot is then reserved apart. */
    private readonly refusable = false,
  ) {}

  /**
   * The slot a `build-pushing` frees: the build stays on the session, marked `pushing`, in the
   * write that hands its slot on or gives it back — each conditional on the session speaking on
   * `connectionId` and holding the build with its slot counted, so `recorded` says whether the
   * report was taken, as the one write it used to make did.
   */
  static whilePushing(session: SessionFields, taskId: string, connectionId: string): FreedSlot {
    return new FreedSlot(
      session,
      taskId,
      {
        handOn: (to, task, limit) => handOnPushingSlot(session.sessionId, taskId, connectionId, to, task, limit),
        giveBack: () => freeSlotWhilePushing(session.sessionId, taskId, connectionId),
      },
      true,
    );
  }

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
      // The finished task's own message, delivered again, cannot take its slot over in one write (the write's two
      // paths would be the same): the slot is given back, then reserved as any other, and the lease finds it stale.
      if (to !== this.taskId) {
        this.state = "handed";
        this.handed = this.writes.handOn(to, task, limit);
        // Refused, it is given back next; failed, nothing more is written.
        this.handed.then((taken) => taken && this.ended(), this.ended);
        if (await this.handed) return true;
      }
      this.state = "released";
      this.released = this.giveBack();
      if (!(await this.released) && this.refusable) return false;
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
      this.released = this.giveBack();
    }
    return this.released ?? Promise.resolve(undefined);
  }

  private giveBack(): Promise<SessionFields | undefined> {
    const released = this.writes.giveBack();
    released.then(this.ended, this.ended);
    return released;
  }

  /** Whether the session took the finished task's end (handed on, or given back; the slot given back if neither was tried yet). */
  async recorded(): Promise<boolean> {
    if (this.handed && (await this.handed)) return true;
    return (await this.release()) !== undefined;
  }
}
