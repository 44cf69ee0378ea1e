/**
 * Writes of the Reports table (flow/job-reports.ts): what GitHub was last told of a job, when
 * to tell it again, and the short lease that lets one invocation at a time send.
 */
import { INITIAL_REPORT_STATE, type ReportState } from "@nimbus/github";
import type { ReportItem } from "./items.ts";
import { indexShard, indexShards, SHARD } from "./keys.ts";
import { firstOfShards } from "./index-walk.ts";
import { Reports } from "./tables.ts";

export const getReport = (jobId: string): Promise<ReportItem | undefined> => Reports.get({ jobId });

/**
 * Takes the job's report lease until `until`, unless someone holds it: the item with its state
 * (made if it was not there), or undefined. The due time goes: the holder sends now.
 */
export const leaseReport = (jobId: string, token: string, now: Date, until: Date): Promise<ReportItem | undefined> =>
  Reports.updateReturning(
    { jobId },
    {
      UpdateExpression: "SET #state = if_not_exists(#state, :initial), leaseUntil = :until, leaseToken = :token REMOVE dueAt, dueShard",
      ConditionExpression: "attribute_not_exists(leaseUntil) OR leaseUntil < :now",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":initial": INITIAL_REPORT_STATE, ":until": until.toISOString(), ":token": token, ":now": now.toISOString() },
    },
    "ALL_NEW",
  );

/** Stores what was sent and lets go of the lease, if this holder still has it (a due time set meanwhile stays). */
export const releaseReport = (jobId: string, token: string, state: ReportState): Promise<boolean> =>
  Reports.update(
    { jobId },
    {
      UpdateExpression: "SET #state = :state REMOVE leaseUntil, leaseToken",
      ConditionExpression: "leaseToken = :token",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":state": state, ":token": token },
    },
  );

/** The report is due at `at` (the sweeper sends it then), unless it is due earlier already. */
export const scheduleReport = (jobId: string, at: Date): Promise<boolean> =>
  Reports.update(
    { jobId },
    {
      UpdateExpression: "SET #state = if_not_exists(#state, :initial), dueAt = :at, dueShard = :shard",
      ConditionExpression: "attribute_not_exists(dueAt) OR dueAt > :at",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":initial": INITIAL_REPORT_STATE, ":at": at.toISOString(), ":shard": indexShard(SHARD.reportDue, jobId) },
    },
  );

/**
 * The report is due at `at` instead of `seen`, if nothing moved it since (no lease taken, no
 * other due time set): a report due before it may be sent (a change noted while a send was
 * refused for a rate limit) would otherwise be taken up by every sweep until then, in front of
 * those that can go.
 */
export const deferReport = (jobId: string, seen: string, at: Date): Promise<boolean> =>
  Reports.update(
    { jobId },
    {
      UpdateExpression: "SET dueAt = :at",
      ConditionExpression: "dueAt = :seen AND attribute_not_exists(leaseUntil)",
      ExpressionAttributeValues: { ":at": at.toISOString(), ":seen": seen },
    },
  );

/** Up to `limit` reports due by `now`, earliest first (the byDue index). */
export const dueReports = (now: Date, limit: number): Promise<ReportItem[]> =>
  firstOfShards(indexShards(SHARD.reportDue), limit, (report) => report.dueAt ?? "", (shard, max) =>
    Reports.firstPage({
      IndexName: "byDue",
      KeyConditionExpression: "dueShard = :shard AND dueAt <= :now",
      ExpressionAttributeValues: { ":shard": shard, ":now": now.toISOString() },
      Limit: max,
    }),
  );
