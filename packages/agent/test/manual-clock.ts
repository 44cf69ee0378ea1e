/**
 * A clock that moves only when a test says so: the agent's back-off, heartbeats, welcome and
 * shutdown deadlines run on it, so a test asserts a time window exactly and a slow machine
 * cannot flake it. Sockets, Nix and the fake service keep real time.
 */
import type { Clock, TimerHandle } from "../src/clock.ts";

interface Timer {
  id: number;
  due: number;
  callback: () => void;
}

export class ManualClock implements Clock {
  private time = 1_700_000_000_000;
  private nextId = 1;
  private readonly timers = new Map<number, Timer>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, due: this.time + Math.max(0, ms), callback };
    this.timers.set(timer.id, timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === "number") this.timers.delete(handle);
  }

  /** How many timers wait. */
  get pending(): number {
    return this.timers.size;
  }

  /** In how many ms the next timer is due; undefined when none waits. */
  nextIn(): number | undefined {
    const next = this.earliest();
    return next === undefined ? undefined : next.due - this.time;
  }

  /** Moves time on by `ms`, firing every timer due by then in order (those they set too). */
  advance(ms: number): void {
    const target = this.time + ms;
    for (let next = this.earliest(); next !== undefined && next.due <= target; next = this.earliest()) {
      this.timers.delete(next.id);
      this.time = next.due;
      next.callback();
    }
    this.time = target;
  }

  private earliest(): Timer | undefined {
    let first: Timer | undefined;
    for (const timer of this.timers.values()) if (first === undefined || timer.due < first.due || (timer.due === first.due && timer.id < first.id)) first = timer;
    return first;
  }
}
