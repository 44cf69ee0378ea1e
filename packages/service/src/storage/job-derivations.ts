import { UNSETTLED, type ToldCopy } from "@nimbus/core";
import type { DerivationStatus } from "@nimbus/protocol";
import { addNeedingJob, buildsUnderWay } from "./derivations.ts";
import { anyOf } from "./condition-terms.ts";
import type { DerivationItem } from "./items.ts";
import { JobDerivationItem } from "./items.ts";
import { noteCountMove } from "./job-counts.ts";
import { jobStatusKey } from "./keys.ts";
import { JobDerivations } from "./tables.ts";

/** A derivation's status as a job copies it: the status and the version it was taken at. */
export type DerivationCopy = Pick<DerivationItem, "drvPath" | "status" | "version">;
/** A derivation as a move left it: what a mirror copies, and the jobs it names (when it keeps them whole). */
type MovedCopy = DerivationCopy & Partial<Pick<DerivationItem, "jobIds">>;
/** Whether a job's evaluation excused the derivation's failure (core attribute-verdict.ts). */
type Excused = JobDerivationItem["excused"];

/** What a write of a row tells of the status it replaced. */
const OldStatus = JobDerivationItem.pick({ status: true }).partial();

/**
 * The update that writes a status copy into one job's row, unless the row holds a newer one;
 * with `excused` when registration knows it (a mirror leaves it as it is). A settle's copy
 * (`told`: written once its dependents were told) also takes a row a registration wrote at
 * the same version, and says so in `told`.
 */
const copyUpdate = (jobId: string, copy: DerivationCopy, mustExist: boolean, excused?: Excused, told?: boolean) => ({
  UpdateExpression: `SET #status = :status, jobStatus = :key, version = :v${excused ? ", excused = :excused" : ""}${told ? ", told = :v" : ""}`,
  ConditionExpression: copyCondition(mustExist, told),
  ExpressionAttributeNames: { "#status": "status" },
  ExpressionAttributeValues: {
    ":status": copy.status,
    ":key": jobStatusKey(jobId, copy.status),
    ":v": copy.version ?? 0,
    ...(excused ? { ":excused": excused } : {}),
  },
});

/** The row exists when it must, and holds an older version (or, for a settle's `told` copy, the same one not told yet). */
export function copyCondition(mustExist: boolean, told?: boolean): string {
  const exists = mustExist ? ["attribute_exists(jobId)"] : [];
  const sameUntold = told ? [[...exists, "version = :v", "attribute_not_exists(told)"], [...exists, "version = :v", "told < :v"]] : [];
  return anyOf([...exists, "attribute_not_exists(version)"], [...exists, "version < :v"], ...sameUntold);
}

/**
 * Writes a status copy into one job's row (unless it holds a newer one); the same write says
 * which status it left (none: the row is new), and the job's counts move with it
 * (storage/job-counts.ts).
 */
async function writeCopy(jobId: string, copy: DerivationCopy, mustExist: boolean, excused?: Excused, told?: boolean): Promise<void> {
  const old = await JobDerivations.updateReturning({ jobId, drvPath: copy.drvPath }, copyUpdate(jobId, copy, mustExist, excused, told), "UPDATED_OLD", OldStatus);
  if (old) await noteCountMove(jobId, old.status, copy.status);
}

/**
 * Records that a job needs a derivation, with the derivation's status as read — by key, so
 * no index stands between a registration and its own row. A newer copy already there stays
 * (it was written by this job's registration too, with the same `excused`).
 */
export async function putJobDerivation(jobId: string, copy: DerivationCopy & Pick<DerivationItem, "jobIds">, excused?: Excused): Promise<void> {
  // An unsettled derivation will move: its list of jobs (when it keeps one) must name this job before the registration looks again.
  const unlisted = UNSETTLED.includes(copy.status) && copy.jobIds !== undefined && !copy.jobIds.has(jobId);
  await Promise.all([writeCopy(jobId, copy, false, excused), unlisted && addNeedingJob(copy.drvPath, jobId)]);
}

/**
 * The rows of derivations this job's registration has just created (flow/register-batch.ts),
 * written together and unconditionally: no other writer makes a job's row of a derivation that
 * did not exist (a mirror only updates rows), and the registration writes the row again by key,
 * conditionally, if the derivation moved meanwhile. Each is counted as a new row.
 */
export async function putNewJobDerivations(jobId: string, created: readonly { copy: DerivationCopy; excused?: Excused }[]): Promise<void> {
  await JobDerivations.batchPut(
    created.map(({ copy, excused }): JobDerivationItem => ({
      jobId,
      drvPath: copy.drvPath,
      status: copy.status,
      jobStatus: jobStatusKey(jobId, copy.status),
      version: copy.version ?? 0,
      ...(excused ? { excused } : {}),
    })),
  );
  for (const { copy } of created) await noteCountMove(jobId, undefined, copy.status);
}

/** A job needs a derivation whose outputs the evaluating agent found valid: nothing to build. */
export async function putCachedJobDerivation(jobId: string, drvPath: string, excused?: Excused): Promise<void> {
  const item: JobDerivationItem = { jobId, drvPath, status: "cached", jobStatus: jobStatusKey(jobId, "cached"), ...(excused ? { excused } : {}) };
  const replaced = await JobDerivations.putReplacing(item, OldStatus);
  await noteCountMove(jobId, replaced?.status, "cached");
}

/** The ids of every job that needs a derivation (the byDrv index). */
export async function jobsNeeding(drvPath: string): Promise<string[]> {
  const rows = await JobDerivations.query(
    {
      IndexName: "byDrv",
      KeyConditionExpression: "drvPath = :drv",
      ExpressionAttributeValues: { ":drv": drvPath },
      ProjectionExpression: "jobId",
    },
    JobDerivationItem.pick({ jobId: true }),
  );
  return rows.map((r) => r.jobId);
}

/**
 * Mirrors a derivation's new status into every job that needs it (for paging and counting
 * by status): those the moved item names (`jobIds`, kept whole while it is unsettled), else
 * those the byDrv index finds. A copy of an older version is dropped (core `isNewerThan`), so
 * late writes cannot undo newer ones; a row the index does not show yet is put right by its
 * registration (by key) or by the sweeper. Returns the ids of those jobs.
 */
export async function mirrorStatus(copy: MovedCopy, options: { told?: boolean } = {}): Promise<string[]> {
  const jobIds = await jobsOf(copy);
  await Promise.all(jobIds.map((jobId) => writeCopy(jobId, copy, true, undefined, options.told)));
  return jobIds;
}

/** The jobs a derivation's moves are copied to: those its item names (`jobIds`, kept whole while it is unsettled), else those the byDrv index finds. */
const jobsOf = async (copy: Pick<MovedCopy, "drvPath" | "jobIds">): Promise<string[]> => (copy.jobIds ? [...copy.jobIds] : await jobsNeeding(copy.drvPath));

/**
 * What each job that needs these settled derivations holds of them (core `settleTold`): by
 * derivation path, a copy (undefined where the job has no row) per job. One BatchGetItem per
 * 100 rows; derivations that keep no list of their jobs ask the byDrv index.
 */
export async function settledCopies(settled: readonly Pick<DerivationItem, "drvPath" | "jobIds">[]): Promise<Map<string, (ToldCopy | undefined)[]>> {
  const jobs = await Promise.all(settled.map(async (drv) => ({ drvPath: drv.drvPath, jobIds: await jobsOf(drv) })));
  const rows = await JobDerivations.batchGet(jobs.flatMap(({ drvPath, jobIds }) => jobIds.map((jobId) => ({ jobId, drvPath }))));
  const byKey = new Map(rows.map((row) => [`${row.jobId} ${row.drvPath}`, row]));
  return new Map(jobs.map(({ drvPath, jobIds }) => [drvPath, jobIds.map((jobId) => byKey.get(`${jobId} ${drvPath}`))]));
}

/** Writes status copies into one job's rows (the sweeper's repair), each unless the row holds a newer one. */
export async function rewriteJobRows(jobId: string, copies: readonly DerivationCopy[]): Promise<void> {
  await Promise.all(copies.map((copy) => writeCopy(jobId, copy, true)));
}

/**
 * Up to `limit` of a job's rows in a status (from the byJobStatus index), from the first
 * derivation path after `after` on, wrapping round to the first: a sample that moves.
 */
export async function jobRowsIn(jobId: string, status: DerivationStatus, limit: number, after = ""): Promise<JobDerivationItem[]> {
  const query = {
    IndexName: "byJobStatus" as const,
    KeyConditionExpression: "jobStatus = :key",
    ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
  };
  const page = async (startKey?: Record<string, unknown>): Promise<JobDerivationItem[]> => {
    for await (const { items } of JobDerivations.pages(query, JobDerivationItem, { pageSize: limit, ...(startKey ? { startKey } : {}) })) return items;
    return [];
  };
  const rows = await page(after ? { jobStatus: jobStatusKey(jobId, status), drvPath: after, jobId } : undefined);
  if (rows.length >= limit || !after) return rows;
  const seen = new Set(rows.map((r) => r.drvPath));
  return [...rows, ...(await page()).filter((r) => !seen.has(r.drvPath))].slice(0, limit);
}

/** Whether a job has at least one derivation in a status (one index read, however big the job). */
export async function jobHasStatus(jobId: string, status: DerivationStatus): Promise<boolean> {
  const items = await JobDerivations.firstPage({
    IndexName: "byJobStatus",
    KeyConditionExpression: "jobStatus = :key",
    ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
    Limit: 1,
  });
  return items.length > 0;
}

/**
 * A job's rows of its builds under way, as each says (`queued`, or `waiting` for a hand-over: a
 * build's start is no move of its rows), in path order: the builds of the byBuilding index that
 * name the job (or keep no list of their jobs), then their rows read consistently. Rows of a
 * build that settled since the index was read are left out.
 */
export async function jobRowsUnderWay(jobId: string): Promise<JobDerivationItem[]> {
  const builds = (await buildsUnderWay()).filter((drv) => drv.jobIds?.has(jobId) ?? true);
  const rows = await JobDerivations.batchGet(builds.map(({ drvPath }) => ({ jobId, drvPath })));
  return rows.filter((row) => UNSETTLED.includes(row.status)).sort((a, b) => (a.drvPath < b.drvPath ? -1 : a.drvPath > b.drvPath ? 1 : 0));
}

/** A job's rows, read consistently from the table, page by page from after `after` on. */
export const jobRowPages = (jobId: string, after?: string, pageSize?: number) =>
  JobDerivations.pages(
    { KeyConditionExpression: "jobId = :job", ExpressionAttributeValues: { ":job": jobId }, ConsistentRead: true },
    JobDerivationItem,
    { ...(after ? { startKey: { jobId, drvPath: after } } : {}), ...(pageSize ? { pageSize } : {}) },
  );

/** Every derivation row of a job read consistently from the table (not the index). */
export function jobDerivationRows(jobId: string): Promise<JobDerivationItem[]> {
  return JobDerivations.query({
    KeyConditionExpression: "jobId = :job",
    ExpressionAttributeValues: { ":job": jobId },
    ConsistentRead: true,
  });
}
