import { rowsBehind, staleDependencyFailure, UNSETTLED } from "@nimbus/core";
import type { DerivationStatus } from "@nimbus/protocol";
import { getDerivations } from "../storage/derivations.ts";
import type { JobItem } from "../storage/items.ts";
import { jobRowsIn, rewriteJobRows } from "../storage/job-derivations.ts";
import type { WorkNotes } from "./new-work.ts";
import { isEvaluating, lookAgainAtInputs, restartCancelled, restartStaleDependencyFailure } from "./register-derivation.ts";

/** Rows of each status looked at per quiet job and sweep: a bounded sample. */
const ROWS_PER_STATUS = 50;
/** Waiting derivations of the sample whose inputs are looked at again: each costs a read of its input rows and inputs. */
const WAITING_LOOKS_PER_JOB = 10;
/**
 * What can hold a running job up: unsettled rows, derivations another job's cancel took from
 * it, and dependency failures whose dependency was started over by another job since.
 */
const LOOKED_AT: readonly DerivationStatus[] = [...UNSETTLED, "cancelled", "dependency-failed"];

/**
 * Puts right a running job's copies of its derivations' statuses that were left behind (a
 * mirror that missed a row: core `rowsBehind`), re-derived from the derivations themselves;
 * starts again the derivations it needs that another job's cancel took (its look for other
 * jobs needing them went through a lagging index), and those that failed on a dependency
 * another job has started over since (core `staleDependencyFailure`); and looks again at the
 * inputs of a few waiting ones (an input that settled without telling them). Each sweep looks
 * at a sample of each status starting at a random path, so a big job's rows are all seen over
 * a few sweeps. Returns how many rows were rewritten or derivations started again or moved on.
 */
export async function repairJobRows(job: JobItem, work: WorkNotes, now: Date, random: () => number = Math.random): Promise<number> {
  const after = `/nix/store/${Math.floor(random() * 36 ** 4).toString(36).padStart(4, "0")}`;
  const rows = (await Promise.all(LOOKED_AT.map((status) => jobRowsIn(job.jobId, status, ROWS_PER_STATUS, after)))).flat();
  if (rows.length === 0) return 0;
  const derivations = await getDerivations(rows.map((row) => row.drvPath));
  let repaired = 0;
  for (const drv of derivations.values()) {
    if (drv.status === "cancelled" && (await restartCancelled(drv.drvPath, work, now))) repaired++;
  }
  // A dependent failed on a failure another job started over just after (docs/reliability.md,
  // "Failures are remembered"): it waits for the dependency again.
  const failedOn = [...derivations.values()].filter((drv) => drv.status === "dependency-failed" && drv.failure?.dependency);
  const dependencies = failedOn.length > 0 ? await getDerivations(failedOn.map((drv) => drv.failure!.dependency!)) : new Map();
  for (const drv of failedOn) {
    const dependency = drv.failure!.dependency!;
    if (staleDependencyFailure(drv, dependencies.get(dependency)?.status) && (await restartStaleDependencyFailure(drv.drvPath, dependency, work, now))) repaired++;
  }
  // A waiting derivation an input settled without telling (docs/reliability.md, "No job hangs"):
  // only once the job's evaluation is done, so no registration of this job is still to look at them.
  if (job.status === "building") {
    const waiting = [...derivations.values()].filter((drv) => drv.status === "waiting").slice(0, WAITING_LOOKS_PER_JOB);
    for (const drv of waiting) {
      // Registered (started over) by another job still evaluating: that registration may yet start a failed input over
      // (core `inputStatusFor`), and is the one to look at its inputs; failing it here would outrun that restart.
      if (drv.registeredBy && drv.registeredBy !== job.jobId && (await isEvaluating(drv.registeredBy))) continue;
      if (await lookAgainAtInputs(drv.drvPath, work, now)) repaired++;
    }
  }
  const behind = rowsBehind(rows, (drvPath) => derivations.get(drvPath));
  await rewriteJobRows(job.jobId, behind);
  return repaired + behind.length;
}
