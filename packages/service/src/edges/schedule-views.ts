/** `GET /api/schedules` (docs/effects.md, "Schedules"): every schedule with its next run, soonest first. */
import type { ScheduleList } from "@nimbus/protocol";
import { listSchedules } from "../storage/schedules.ts";

export async function scheduleList(): Promise<ScheduleList> {
  const items = await listSchedules();
  return {
    schedules: items.map((s) => ({
      repository: s.repository,
      name: s.name,
      when: s.when,
      ref: s.ref,
      commit: s.commit,
      ...(s.nextRunAt ? { nextRunAt: s.nextRunAt } : {}),
      ...(s.lastRunAt ? { lastRunAt: s.lastRunAt } : {}),
      ...(s.lastJobId ? { lastJobId: s.lastJobId } : {}),
    })),
  };
}
