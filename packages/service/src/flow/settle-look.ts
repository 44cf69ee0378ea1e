/**
 * The sweeper's look at recent settles (docs/reliability.md, "No job hangs"). A settled
 * derivation is in the byUnpropagated index from the write that settles it; a settle told in
 * one invocation does not write again to leave it (a request per build), but writes its jobs'
 * copies once every dependent was told (`told`). So the sweeper reads what settled since its
 * last look (core `settledLookFrom`), the jobs' copies of them a BatchGetItem per 100, and tells
 * again only those whose copies do not say they were told (core `settleTold`): a handler that
 * died half-way, a continuation page that was lost. Telling again changes nothing twice.
 */
import { PROPAGATING, settledLookFrom, settleTold } from "@nimbus/core";
import { getDerivation, unpropagated } from "../storage/derivations.ts";
import type { DerivationItem } from "../storage/items.ts";
import { settledCopies } from "../storage/job-derivations.ts";
import { loadCursor, saveCursor } from "../storage/sweeper-cursors.ts";
import type { WorkNotes } from "./new-work.ts";
import { settle } from "./settle.ts";

/** Settles whose jobs' copies are read together. */
const LOOK_BATCH = 100;
/** The sweeper cursor's step: where the last look ended. */
const STEP = "unpropagated-settles";

/**
 * Tells again the settles since the last look, up to `before`, whose dependents and jobs may
 * not have been told. Returns how many it told again and whether it got through before
 * `outOfTime` (where it stopped is saved: the next sweep goes on from there).
 */
export async function tellUntoldSettles(before: Date, now: Date, work: WorkNotes, outOfTime: () => boolean): Promise<{ told: number; finished: boolean }> {
  const lastEnd = (await loadCursor(STEP))?.through;
  const from = settledLookFrom(typeof lastEnd === "string" ? lastEnd : undefined, before);
  let told = 0;
  // The settle time of the last derivation looked at in full: a look cut short goes on from there.
  let through: string | undefined;
  let batch: DerivationItem[] = [];
  const look = async (): Promise<boolean> => {
    const copies = await settledCopies([...new Map(batch.filter((drv) => drv.propagatedThrough === undefined).map((drv) => [drv.drvPath, drv])).values()]);
    for (const indexed of batch) {
      if (outOfTime()) return false;
      if (settleTold({ version: indexed.version ?? 0, paging: indexed.propagatedThrough !== undefined }, copies.get(indexed.drvPath) ?? [])) continue;
      // The index may lag: what is told is the derivation as it is now, and only while it is still settled.
      const drv = await getDerivation(indexed.drvPath);
      if (!drv?.propagateShard || !PROPAGATING.includes(drv.status)) continue;
      told++;
      await settle(drv, work, now);
    }
    through = batch.at(-1)?.updatedAt ?? through;
    batch = [];
    return true;
  };
  const stop = async () => {
    const at = through ?? from;
    if (at !== undefined) await saveCursor(STEP, { through: at }, now);
    return { told, finished: false };
  };
  for await (const { item } of unpropagated(before, from)) {
    if (outOfTime()) return stop();
    batch.push(item);
    if (batch.length >= LOOK_BATCH && !(await look())) return stop();
  }
  if (batch.length > 0 && !(await look())) return stop();
  await saveCursor(STEP, { through: before.toISOString() }, now);
  return { told, finished: true };
}
