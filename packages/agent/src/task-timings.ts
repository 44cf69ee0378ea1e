/**
 * Where a task's time goes, phase by phase, for the debug log (docs/agent.md, "Logs"): one line
 * `task <id>: timings {"<phase>": ms, …}` at the end, which `npm run bench` reads (docs/scale.md).
 */
import type { Clock } from "./clock.ts";

export class PhaseTimings {
  private readonly phases: Record<string, number> = {};
  private last: number;

  constructor(private readonly clock: Pick<Clock, "now">) {
    this.last = clock.now();
  }

  /** The phase that just ended: the time since the previous mark (or the start) is added to it. */
  mark(phase: string): void {
    const now = this.clock.now();
    this.phases[phase] = (this.phases[phase] ?? 0) + (now - this.last);
    this.last = now;
  }

  /** Time spent on something that overlaps the phases (pushes while events are sent): added to `phase`, no mark moved. */
  add(phase: string, ms: number): void {
    this.phases[phase] = (this.phases[phase] ?? 0) + ms;
  }

  /** The log line: phases in the order they first ended, whole milliseconds. */
  line(taskId: string): string {
    return `task ${taskId}: timings ${JSON.stringify(Object.fromEntries(Object.entries(this.phases).map(([k, v]) => [k, Math.round(v)])))}`;
  }
}
