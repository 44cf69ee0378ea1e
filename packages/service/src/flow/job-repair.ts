import { rowsBehind, UNSETTLED } from "@nimbus/core";
import { getDerivations } from "../storage/derivations.ts";
import { jobRowsIn, rewriteJobRows } from "../storage/job-derivations.ts";

/** Rows of each unsettled status looked at per quiet job and sweep: a bounded sample. */
const ROWS_PER_STATUS = 50;

/**
 * Puts right a running job's copies of its derivations' statuses that were left behind (a
 * mirror that missed a row: core `rowsBehind`), re-derived from the derivations themselves.
 * Only unsettled rows can hold a job up; each sweep looks at a sample starting at a random
 * path, so a big job's rows are all seen over a few sweeps. Returns how many were rewritten.
 */
export async function repairJobRows(jobId: string, random: () => number = Math.random): Promise<number> {
  const after = `/nix/store/${Math.floor(random() * 36 ** 4).toString(36).padStart(4, "0")}`;
  const rows = (await Promise.all(UNSETTLED.map((status) => jobRowsIn(jobId, status, ROWS_PER_STATUS, after)))).flat();
  if (rows.length === 0) return 0;
  const derivations = await getDerivations(rows.map((row) => row.drvPath));
  const behind = rowsBehind(rows, (drvPath) => derivations.get(drvPath));
  await rewriteJobRows(jobId, behind);
  return behind.length;
}
