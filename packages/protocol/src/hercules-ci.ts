import * as z from "zod";

/**
 * A repository's `herculesCI` attribute, as far as the wire carries it (docs/effects.md): the
 * names of its `onPush` and `onSchedule` handlers, each of which becomes a job of its own.
 */
export const HandlerName = z.string().regex(/^[A-Za-z0-9_'+.-]{1,64}$/, "a handler name (1–64 letters, digits, _ ' + . -)");

/** Which handler of `herculesCI` a job evaluates: `onPush.<name>.outputs` or `onSchedule.<name>.outputs`. */
export const JobHandler = z.strictObject({
  kind: z.enum(["onPush", "onSchedule"]),
  name: HandlerName,
});
export type JobHandler = z.infer<typeof JobHandler>;

export const DAYS_OF_WEEK = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;
export const DayOfWeek = z.enum(DAYS_OF_WEEK);
export type DayOfWeek = z.infer<typeof DayOfWeek>;

/**
 * `onSchedule.<name>.when` (UTC), Hercules' time constraints: every field that is given must
 * hold. Without `minute` or `hour`, Nimbus picks one (the same for a repository and handler
 * every time, core schedule.ts); `dayOfWeek` and `dayOfMonth` default to every day.
 */
export const TimeConstraints = z.strictObject({
  minute: z.number().int().min(0).max(59).optional(),
  hour: z.array(z.number().int().min(0).max(23)).min(1).max(24).optional(),
  dayOfWeek: z.array(DayOfWeek).min(1).max(7).optional(),
  dayOfMonth: z.array(z.number().int().min(1).max(31)).min(1).max(31).optional(),
});
export type TimeConstraints = z.infer<typeof TimeConstraints>;

/** What an evaluation found of `herculesCI` (in `evaluation-done`). */
export const JobConfig = z.strictObject({
  /** The `onPush` handler this evaluation walked (its job's); absent when `onPush` is empty. */
  walked: HandlerName.optional(),
  /** Every enabled `onPush` handler, sorted: one job each for the push. */
  onPush: z.array(HandlerName).max(64),
  /** Every enabled `onSchedule` handler with its time constraints. */
  onSchedule: z.array(z.strictObject({ name: HandlerName, when: TimeConstraints })).max(64),
});
export type JobConfig = z.infer<typeof JobConfig>;

/** One `onSchedule` handler of a repository's default branch, as `GET /api/schedules` shows it. */
export const ScheduleView = z.strictObject({
  repository: z.string(),
  name: HandlerName,
  when: TimeConstraints,
  /** The default branch and the latest commit of it that was evaluated: what its jobs run. */
  ref: z.string(),
  commit: z.string(),
  /** The next time a job starts (UTC); absent when `when` names no time. */
  nextRunAt: z.iso.datetime().optional(),
  lastRunAt: z.iso.datetime().optional(),
  lastJobId: z.string().optional(),
});
export type ScheduleView = z.infer<typeof ScheduleView>;
export const ScheduleList = z.strictObject({ schedules: z.array(ScheduleView) });
export type ScheduleList = z.infer<typeof ScheduleList>;
