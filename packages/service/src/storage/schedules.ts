/** The Schedules table (docs/effects.md, "Schedules"): each write conditional, so two sweeps or evaluations change nothing twice. */
import type { ScheduleItem } from "./items.ts";
import { indexShards, SHARD } from "./keys.ts";
import { firstOfShards } from "./index-walk.ts";
import { Schedules } from "./tables.ts";

/** The schedules of one repository. */
export const repositorySchedules = (repository: string): Promise<ScheduleItem[]> =>
  Schedules.query({ KeyConditionExpression: "repository = :r", ExpressionAttributeValues: { ":r": repository }, ConsistentRead: true });

/** Writes a schedule as a newer evaluation says it; whether it did (an older evaluation's word changes nothing). */
export const putSchedule = (item: ScheduleItem): Promise<boolean> =>
  Schedules.put(item, { expression: "attribute_not_exists(repository) OR sourceCreatedAt <= :at", values: { ":at": item.sourceCreatedAt } });

/** Deletes a schedule a newer evaluation no longer has. */
export const deleteSchedule = (repository: string, name: string, sourceCreatedAt: string): Promise<boolean> =>
  Schedules.delete({ repository, name }, { expression: "sourceCreatedAt <= :at", values: { ":at": sourceCreatedAt } });

/** Up to 100 schedules whose next run is at or before `now` (the byNextRun index: only due ones are read). */
export const dueSchedules = (now: Date): Promise<ScheduleItem[]> =>
  firstOfShards(indexShards(SHARD.schedule), 100, (schedule) => schedule.nextRunAt ?? "", (shard, limit) =>
    Schedules.firstPage({
      IndexName: "byNextRun",
      KeyConditionExpression: "dueShard = :s AND nextRunAt <= :now",
      ExpressionAttributeValues: { ":s": shard, ":now": now.toISOString() },
      Limit: limit,
    }),
  );

/** Every schedule with a next run, soonest first (for the API). */
export async function listSchedules(): Promise<ScheduleItem[]> {
  const items: ScheduleItem[] = [];
  for (const shard of indexShards(SHARD.schedule)) {
    for await (const page of Schedules.pages({ IndexName: "byNextRun", KeyConditionExpression: "dueShard = :s", ExpressionAttributeValues: { ":s": shard } })) {
      items.push(...page.items);
    }
  }
  return items.sort((a, b) => (a.nextRunAt ?? "").localeCompare(b.nextRunAt ?? ""));
}

/** due → the next run, once: whether this call moved it (another sweep may have). */
export function advanceSchedule(item: ScheduleItem, next: Date | undefined, jobId: string, now: Date): Promise<boolean> {
  return Schedules.update(
    { repository: item.repository, name: item.name },
    {
      UpdateExpression: next
        ? "SET nextRunAt = :next, lastRunAt = :now, lastJobId = :job, updatedAt = :now"
        : "SET lastRunAt = :now, lastJobId = :job, updatedAt = :now REMOVE nextRunAt, dueShard",
      ConditionExpression: "nextRunAt = :due",
      ExpressionAttributeValues: { ":due": item.nextRunAt, ":now": now.toISOString(), ":job": jobId, ...(next ? { ":next": next.toISOString() } : {}) },
    },
  );
}
