/**
 * The status workflow after a derivation settles (docs/architecture.md, "result → settled"):
 * its jobs hear of it, its dependents move on (core `dependentMoves`: ready when this was their
 * last pending input, dependency-failed — transitively — when it failed), and jobs with nothing
 * left finish. Every write is conditional, so running it twice (the sweeper does, after a
 * Lambda died half-way) changes nothing twice.
 */
import { builtInputOf, dependentMoves, isReadyToQueue, mayBeReady, type PageNext } from "@nimbus/core";
import pMap from "p-map";
import { sendToBuildQueue } from "../storage/build-queues.ts";
import { fanOutPage, sendFanOut } from "../storage/fan-out-queue.ts";
import { dependentPage } from "../storage/derivation-edges.ts";
import { WRITES_AT_ONCE } from "../storage/dynamo-batch.ts";
import { getDerivation, markPropagated, moveDerivation, notePropagatedThrough, versionIs } from "../storage/derivations.ts";
import type { DerivationItem } from "../storage/items.ts";
import { mirrorStatus } from "../storage/job-derivations.ts";
import { isDerivationInput } from "../storage/derivation-inputs.ts";
import { clearPendingInputs, hasPendingInputs } from "../storage/pending-inputs.ts";
import { handOver, handOverOnClear } from "./hand-over.ts";
import { finishJobIfDone } from "./job-finish.ts";
import type { WorkNotes } from "./new-work.ts";

/**
 * Tells one page of dependents, from where the last settle of this version stopped
 * (`propagatedThrough`). If more are left it notes where it got to and puts the next page on
 * the FanOut queue (flow/fan-out.ts goes on there, a page per invocation: docs/architecture.md,
 * "Fan-out in pages"); otherwise its jobs' copies are written, saying the dependents were told
 * (`told`), its jobs finish if they can, and a settle that went through pages (or whose item
 * names no jobs) leaves the byUnpropagated index. One told in one invocation stays in it: the
 * sweeper's look at recent settles reads its jobs' copies instead of a write per build here
 * (core `settleTold`, docs/reliability.md "No job hangs"). Returns whether it got through;
 * until then the sweeper tells it again where a handler died or a continuation was lost.
 */
export async function settle(drv: DerivationItem, work: WorkNotes, now = new Date()): Promise<boolean> {
  const next = await tellDependents(drv, work, now);
  if (next.type === "next") {
    if (await notePropagatedThrough(drv, next.after)) await sendFanOut({ type: "settle", drvPath: drv.drvPath, version: drv.version ?? 0, after: next.after });
    return false;
  }
  // Only now: a copy that says `told` is what tells the sweeper it need not tell them again.
  const jobIds = await mirrorStatus(drv, { told: true });
  for (const jobId of jobIds) work.addChangedJob(jobId);
  // In an agent's frame these checks wait until its other moves are made, and share their count write (flow/new-work.ts).
  await Promise.all(jobIds.map((jobId) => work.checkJob(jobId, () => finishJobIfDone(jobId, now, work, { counted: true }))));
  // The sweeper's look reads the copies of the jobs the item names: one that names none (a restart dropped the list)
  // would cost it an index query per look, and one that went through pages is looked at by its position: both leave the index.
  if (drv.propagatedThrough !== undefined || drv.jobIds === undefined) await markPropagated(drv);
  return true;
}

/** Moves one page of dependents on: ready when this was their last pending input, dependency-failed when it failed. */
async function tellDependents(drv: DerivationItem, work: WorkNotes, now: Date): Promise<PageNext> {
  const size = fanOutPage();
  const { dependents, next, soles } = await dependentPage(drv.drvPath, drv.propagatedThrough, size);
  work.dependentsTold += dependents.length;
  const moves = dependentMoves(drv, dependents);
  // A page's clears a few at a time, not one after the other: a hub's page of 100 was 100 rounds of writes.
  await pMap(
    moves.flatMap((move) => (move.type === "clear-input" ? [move] : [])),
    async (move) => {
      // A dependent with this one input, whose edge row says where it may be built: handed over in the write that clears it.
      const placement = soles.get(move.dependent);
      const handed = placement ? await handOverOnClear(move.dependent, placement, drv, work, now) : undefined;
      if (handed?.type === "handed") return;
      if (handed?.type === "queued") return void (await sendQueued(handed.queued, [builtInputOf(drv)], work));
      // Its outputs go on the dependent's item with the clear: whoever queues it then reads none of its inputs.
      const after = await clearPendingInputs(move.dependent, [move.input], [builtInputOf(drv)]);
      await queueIfReady(move.dependent, work, now, { settled: drv, ...(after ? { item: after } : {}) });
    },
    { concurrency: WRITES_AT_ONCE },
  );
  // Failures one after the other: each may settle its own dependents in this invocation while it has told less than a page.
  for (const move of moves) if (move.type === "fail-dependent") await failDependent(move.dependent, move.dependency, work, now);
  return next;
}

/** What the caller of `queueIfReady` has read already: its item (no read then), and the input that just settled. */
interface Known {
  item?: DerivationItem;
  settled?: DerivationItem;
}

/**
 * waiting → queued once nothing is pending (core `isReadyToQueue`), then onto its build queue,
 * noted as new work for idle agents that can build it — unless the agent whose result readied
 * it takes it directly (flow/hand-over.ts). The move is conditional on the version read: a
 * restart in between (whose input rows this look may have missed) makes it a no-op. Returns
 * the derivation as queued, whose jobs' copies this invocation writes; undefined otherwise.
 */
export async function queueIfReady(drvPath: string, work: WorkNotes, now: Date, known: Known = {}): Promise<DerivationItem | undefined> {
  const drv = known.item ?? (await getDerivation(drvPath));
  if (!drv || !mayBeReady(drv)) return undefined;
  // The item just read says which inputs it still waits for (rows are read only past its bound).
  if (!isReadyToQueue(drv, await hasPendingInputs(drvPath, drv))) return undefined;
  const handed = await handOver(drv, work, now, known.settled ? [known.settled] : []);
  if (handed.type === "handed" || handed.type === "moved") return undefined;
  const queued =
    handed.type === "queued"
      ? handed.queued
      : await moveDerivation(drvPath, { from: ["waiting"], to: "queued", set: { queuedAt: now.toISOString() }, remove: ["inputsBuilt"], condition: versionIs(drv) }, now);
  if (!queued) return undefined;
  // Its inputs' outputs go into its message, and leave the item with the move (every later write costs by its size): a retry or re-send reads them.
  await sendQueued(queued, [...(drv.inputsBuilt ?? []), ...(known.settled ? [builtInputOf(known.settled)] : [])], work);
  return queued;
}

/** A derivation just queued onto its build queue, with its inputs' outputs; noted as new work, its jobs' copies after the wake. */
async function sendQueued(queued: DerivationItem, inputs: Parameters<typeof sendToBuildQueue>[1], work: WorkNotes): Promise<void> {
  await sendToBuildQueue(queued, inputs);
  // Idle agents that can take it get it now, beside the bookkeeping still to do (docs/scale.md).
  work.addBuildQueue(queued.queueKey);
  work.wakeSoon();
  // Its jobs' copies after that wake, which need not wait for them (a lease it makes is no move of them).
  work.afterWake(() => mirrorStatus(queued));
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
  if (!failed) return;
  // Its own dependents fail in turn: here while this invocation has told less than a page, else through the queue.
  if (work.dependentsTold < fanOutPage()) await settle(failed, work, now);
  else await sendFanOut({ type: "settle", drvPath: failed.drvPath, version: failed.version ?? 0 });
}
