/**
 * The status workflow after a derivation settles (docs/architecture.md, "result → settled"):
 * its jobs hear of it, its dependents move on (core `dependentMoves`: ready when this was their
 * last pending input, dependency-failed — transitively — when it failed), and jobs with nothing
 * left finish. Every write is conditional, so running it twice (the sweeper does, after a
 * Lambda died half-way) changes nothing twice.
 */
import { dependentMoves, isReadyToQueue } from "@nimbus/core";
import { sendToBuildQueue } from "../storage/build-queues.ts";
import { DEPENDENTS_PER_PAGE, dependentPages } from "../storage/derivation-edges.ts";
import { clearPendingInputs, markPropagated, moveDerivation, notePropagatedThrough } from "../storage/derivations.ts";
import type { DerivationItem } from "../storage/items.ts";
import { mirrorStatus } from "../storage/job-derivations.ts";
import { finishJobIfDone } from "./job-finish.ts";
import type { WorkNotes } from "./new-work.ts";

/**
 * Tells dependents in pages, noting after each page where it got to, so a settle of a
 * derivation with many dependents that runs out of time (`outOfTime`, between pages) or dies
 * is carried on by the next one (the sweeper's) instead of starting over. Returns whether it
 * got through; if not, the derivation stays in the byUnpropagated index.
 */
export async function settle(drv: DerivationItem, work: WorkNotes, now = new Date(), outOfTime: () => boolean = () => false): Promise<boolean> {
  const jobIds = await mirrorStatus(drv.drvPath, drv.status, drv.updatedAt);
  for (const jobId of jobIds) work.addChangedJob(jobId);
  for await (const dependents of dependentPages(drv.drvPath, drv.propagatedThrough)) {
    for (const move of dependentMoves(drv, dependents)) {
      if (move.type === "clear-input") {
        const after = await clearPendingInputs(move.dependent, [move.input]);
        if (after && isReadyToQueue(after)) await enqueue(move.dependent, work, now);
      } else {
        await failDependent(move.dependent, move.dependency, work, now);
      }
    }
    if (dependents.length < DEPENDENTS_PER_PAGE) break;
    await notePropagatedThrough(drv, dependents[dependents.length - 1]!);
    if (outOfTime()) return false;
  }
  await Promise.all(jobIds.map((jobId) => finishJobIfDone(jobId)));
  await markPropagated(drv.drvPath);
  return true;
}

/** waiting → queued, then onto its build queue, noted as new work for idle agents that can build it. */
export async function enqueue(drvPath: string, work: WorkNotes, now: Date): Promise<void> {
  const queued = await moveDerivation(
    drvPath,
    { from: ["waiting"], to: "queued", set: { queuedAt: now.toISOString() }, condition: { expression: "attribute_not_exists(pendingInputs)" } },
    now,
  );
  if (!queued) return;
  await sendToBuildQueue(queued);
  await mirrorStatus(drvPath, "queued", queued.updatedAt);
  work.addBuildQueue(queued.queueKey);
}

/**
 * waiting → dependency-failed, then settled in turn (its own dependents fail too) — only while
 * `dependency` is still one of its inputs (an edge outlives a registration taken over since).
 */
export async function failDependent(drvPath: string, dependency: string, work: WorkNotes, now: Date): Promise<void> {
  const failed = await moveDerivation(
    drvPath,
    {
      from: ["waiting"],
      to: "dependency-failed",
      set: { failure: { reason: `input ${dependency} failed`, dependency }, finishedAt: now.toISOString() },
      remove: ["pendingInputs"],
      condition: { expression: "contains(inputDrvs, :dependency)", values: { ":dependency": dependency } },
    },
    now,
  );
  if (failed) await settle(failed, work, now);
}
