/**
 * The status workflow after a derivation settles (docs/architecture.md, "result → settled"):
 * its jobs hear of it, its dependents move on (core `dependentMoves`: ready when this was their
 * last pending input, dependency-failed — transitively — when it failed), and jobs with nothing
 * left finish. Every write is conditional, so running it twice (the sweeper does, after a
 * Lambda died half-way) changes nothing twice.
 */
import { dependentMoves, isReadyToQueue, mayBeReady } from "@nimbus/core";
import { sendToBuildQueue } from "../storage/build-queues.ts";
import { DEPENDENTS_PER_PAGE, dependentPages } from "../storage/derivation-edges.ts";
import { getDerivation, markPropagated, moveDerivation, notePropagatedThrough, versionIs } from "../storage/derivations.ts";
import type { DerivationItem } from "../storage/items.ts";
import { mirrorStatus } from "../storage/job-derivations.ts";
import { isDerivationInput } from "../storage/derivation-inputs.ts";
import { clearPendingInputs, hasPendingInputs } from "../storage/pending-inputs.ts";
import { finishJobIfDone } from "./job-finish.ts";
import type { WorkNotes } from "./new-work.ts";

/**
 * Tells dependents in pages, noting after each page where it got to, so a settle of a
 * derivation with many dependents that runs out of time (`outOfTime`, between pages) or dies
 * is carried on by the next one (the sweeper's) instead of starting over. Returns whether it
 * got through; if not, the derivation stays in the byUnpropagated index.
 */
export async function settle(drv: DerivationItem, work: WorkNotes, now = new Date(), outOfTime: () => boolean = () => false): Promise<boolean> {
  const jobIds = await mirrorStatus(drv);
  for (const jobId of jobIds) work.addChangedJob(jobId);
  for await (const dependents of dependentPages(drv.drvPath, drv.propagatedThrough)) {
    for (const move of dependentMoves(drv, dependents)) {
      if (move.type === "clear-input") {
        await clearPendingInputs(move.dependent, [move.input]);
        await queueIfReady(move.dependent, work, now);
      } else {
        await failDependent(move.dependent, move.dependency, work, now);
      }
    }
    if (dependents.length < DEPENDENTS_PER_PAGE) break;
    await notePropagatedThrough(drv, dependents[dependents.length - 1]!);
    if (outOfTime()) return false;
  }
  await Promise.all(jobIds.map((jobId) => finishJobIfDone(jobId, now, work)));
  await markPropagated(drv);
  return true;
}

/**
 * waiting → queued once nothing is pending (core `isReadyToQueue`), then onto its build queue,
 * noted as new work for idle agents that can build it. The move is conditional on the version
 * read: a restart in between (whose input rows this look may have missed) makes it a no-op.
 */
export async function queueIfReady(drvPath: string, work: WorkNotes, now: Date): Promise<void> {
  const drv = await getDerivation(drvPath);
  if (!drv || !mayBeReady(drv)) return;
  if (!isReadyToQueue(drv, await hasPendingInputs(drvPath))) return;
  const queued = await moveDerivation(
    drvPath,
    { from: ["waiting"], to: "queued", set: { queuedAt: now.toISOString() }, condition: versionIs(drv) },
    now,
  );
  if (!queued) return;
  await sendToBuildQueue(queued);
  await mirrorStatus(queued);
  work.addBuildQueue(queued.queueKey);
}

/**
 * waiting → dependency-failed, then settled in turn (its own dependents fail too) — only when
 * a registration of it listed `dependency` (an input row): every evaluation puts edges, but one
 * that found the derivation registered already changes nothing of it (docs/reliability.md,
 * "What an evaluator may assert"). A registration writes its rows before the derivation can
 * wait on them, and then looks at its inputs itself.
 */
export async function failDependent(drvPath: string, dependency: string, work: WorkNotes, now: Date): Promise<void> {
  if (!(await isDerivationInput(drvPath, dependency))) return;
  const failed = await moveDerivation(
    drvPath,
    {
      from: ["waiting"],
      to: "dependency-failed",
      set: { failure: { reason: `input ${dependency} failed`, dependency }, finishedAt: now.toISOString() },
      remove: ["pendingParts"],
    },
    now,
  );
  if (failed) await settle(failed, work, now);
}
