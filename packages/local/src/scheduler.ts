/** EventBridge Scheduler locally: a timer per schedule, each run awaited before the next is due. */
import { randomUUID } from "node:crypto";
import type { ScheduledEvent } from "aws-lambda";
import { describeError } from "./handlers.ts";

export interface Schedule {
  name: string;
  handler: string;
  intervalMs: number;
}

export interface Scheduler {
  /** Cancels future runs; one in progress finishes on its own (the invoker's drain waits for it). */
  stop(): void;
}

function scheduledEvent(name: string, region: string): ScheduledEvent<Record<string, never>> {
  return {
    version: "0",
    id: randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.scheduler",
    account: "000000000000",
    time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    region,
    resources: [`arn:aws:scheduler:${region}:000000000000:schedule/default/${name}`],
    detail: {},
  };
}

export function startScheduler(options: {
  schedules: readonly Schedule[];
  invoke: (spec: string, event: unknown) => Promise<unknown>;
  log: (line: string) => void;
  region?: string;
}): Scheduler {
  const region = options.region ?? "us-east-1";
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();

  function arm(schedule: Schedule, delayMs: number): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      const startedAt = Date.now();
      options
        .invoke(schedule.handler, scheduledEvent(schedule.name, region))
        .catch((error: unknown) => options.log(`scheduler: ${schedule.name} failed: ${describeError(error)}`))
        .finally(() => {
          // Fixed rate, but a slow run delays the next one instead of overlapping it.
          if (!stopped) arm(schedule, Math.max(0, schedule.intervalMs - (Date.now() - startedAt)));
        });
    }, delayMs);
    timers.add(timer);
  }

  for (const schedule of options.schedules) {
    if (!(schedule.intervalMs > 0)) throw new RangeError(`schedule ${schedule.name}: intervalMs must be > 0`);
    arm(schedule, schedule.intervalMs);
  }

  return {
    stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
