/**
 * When `onSchedule` jobs run (docs/effects.md, "Schedules"): Hercules' time constraints in UTC,
 * every given field holding at once. A schedule without `minute` or `hour` gets one picked from
 * its key (the same every time, spread over the hour and the day). Pure: the clock is an argument.
 */
import { DAYS_OF_WEEK, type TimeConstraints } from "@nimbus/protocol";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** Far enough for any calendar the constraints allow (day 31 with a weekday comes within a few years). */
const SEARCH_DAYS = 366 * 8;

/** A small, stable hash of a schedule's key: its picked minute and hour. */
function keyHash(key: string): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** The constraints with the minute and hour filled in for `key` where they were left out. */
export function resolveSchedule(when: TimeConstraints, key: string): { minute: number; hours: number[]; dayOfWeek?: string[]; dayOfMonth?: number[] } {
  const h = keyHash(key);
  return {
    minute: when.minute ?? h % 60,
    hours: [...new Set(when.hour ?? [Math.floor(h / 60) % 24])].sort((a, b) => a - b),
    ...(when.dayOfWeek ? { dayOfWeek: when.dayOfWeek } : {}),
    ...(when.dayOfMonth ? { dayOfMonth: when.dayOfMonth } : {}),
  };
}

/** The first time strictly after `after` that the schedule names (whole minutes, UTC); undefined if it names none. */
export function nextRun(when: TimeConstraints, key: string, after: Date): Date | undefined {
  const s = resolveSchedule(when, key);
  const start = Math.floor(after.getTime() / DAY) * DAY;
  for (let day = 0; day <= SEARCH_DAYS; day++) {
    const midnight = new Date(start + day * DAY);
    // getUTCDay: 0 is Sunday; DAYS_OF_WEEK starts on Monday.
    const weekday = DAYS_OF_WEEK[(midnight.getUTCDay() + 6) % 7]!;
    if (s.dayOfWeek && !s.dayOfWeek.includes(weekday)) continue;
    if (s.dayOfMonth && !s.dayOfMonth.includes(midnight.getUTCDate())) continue;
    for (const hour of s.hours) {
      const at = midnight.getTime() + hour * 60 * MINUTE + s.minute * MINUTE;
      if (at > after.getTime()) return new Date(at);
    }
  }
  return undefined;
}

/**
 * What a sweep at `now` does with a schedule due at `dueAt`: run it once if the time has come —
 * however many of its times passed meanwhile (the stack was down): missed ones are not made up —
 * and the next time after `now`.
 */
export function scheduleStep(when: TimeConstraints, key: string, dueAt: Date, now: Date): { run: boolean; next: Date | undefined } {
  if (dueAt.getTime() > now.getTime()) return { run: false, next: dueAt };
  return { run: true, next: nextRun(when, key, now) };
}
