import { advanceWaiting, queueKeyOf, registrationStep, RESTARTABLE } from "@nimbus/core";
import type { DerivationEvent } from "@nimbus/protocol";
import { putEdges } from "../storage/derivation-edges.ts";
import { clearPart, createDerivation, getDerivation, getDerivations, moveDerivation } from "../storage/derivations.ts";
import type { DerivationItem } from "../storage/items.ts";
import { mirrorStatus, putJobDerivation } from "../storage/job-derivations.ts";
import { getJob } from "../storage/jobs.ts";
import { putDerivationInputs } from "../storage/derivation-inputs.ts";
import { clearPendingInputs, pendingInputsOf, putPendingInputs } from "../storage/pending-inputs.ts";
import type { WorkNotes } from "./new-work.ts";
import { failDependent, queueIfReady } from "./settle.ts";

/** A registration that lost a race decides again on what it finds, at most this many times. */
const REGISTRATION_TRIES = 3;

/**
 * Adds one derivation an evaluation found to the shared graph and to the job. Order of
 * writes matters: edges first, then the inputs it waits for and the record of its inputs to
 * build (only when this registration creates, restarts or adds a part to it: a derivation
 * found settled or waiting already has its rows), then the item, then a fresh look at the
 * inputs — so an input that settles at any moment either sees this derivation through its
 * edge or is seen here, and a derivation waiting with every part in has all its input rows.
 */
export async function registerDerivation(
  jobId: string,
  event: DerivationEvent,
  options: { rebuildFailures: boolean },
  work: WorkNotes,
  now = new Date(),
): Promise<void> {
  const at = now.toISOString();
  const inputs = [...new Set(event.inputDrvs)];
  await putEdges(event.drvPath, inputs);
  const rows = onceOnly(async () => {
    await Promise.all([putPendingInputs(event.drvPath, inputs), putDerivationInputs(event.drvPath, inputs)]);
  });
  // Until every part of a split event is in, the others' markers keep it from being ready.
  const markers = otherParts(event);
  const requiredFeatures = [...new Set(event.requiredFeatures)].sort();
  const fresh: DerivationItem = {
    drvPath: event.drvPath,
    system: event.system,
    requiredFeatures,
    outputs: event.outputs,
    ...(event.sources ? { needs: event.sources } : {}),
    status: "waiting",
    version: 0,
    ...(markers.length ? { pendingParts: new Set(markers) } : {}),
    queueKey: queueKeyOf(event.system, requiredFeatures),
    attempt: 0,
    createdAt: at,
    updatedAt: at,
    // The first entry of its status history (storage/derivations.ts appends the moves).
    history: [{ at, status: "waiting" }],
  };
  const existing = await getDerivation(event.drvPath);
  let created = false;
  if (!existing) {
    await rows();
    created = await createDerivation(fresh);
  }
  const current = created ? fresh : await takeIn(existing ?? (await getDerivation(event.drvPath)), event, markers, rows, options.rebuildFailures, now);
  if (current) await putJobDerivation(jobId, current, event.excused);
  if (current?.status === "waiting") await advance(event.drvPath, inputs, work, now);
  // A move made meanwhile may have been mirrored before the index showed this job's row: the
  // row is written once more by key, with the derivation as it is now. A cancel meanwhile came
  // from a job that did not see this one needs it (the index lagged): it starts again.
  let latest = await getDerivation(event.drvPath);
  if (latest?.status === "cancelled" && (await isEvaluating(jobId)) && (await restartCancelled(event.drvPath, work, now))) {
    latest = await getDerivation(event.drvPath);
  }
  if (latest && latest.version !== current?.version) await putJobDerivation(jobId, latest, event.excused);
}

const isEvaluating = async (jobId: string) => (await getJob(jobId))?.status === "evaluating";

/**
 * Starts a cancelled derivation that a running job needs after all over, as it was: its part
 * markers and input rows are as the cancel left them, and are looked at again. Whether it did.
 */
export async function restartCancelled(drvPath: string, work: WorkNotes, now: Date): Promise<boolean> {
  const moved = await moveDerivation(
    drvPath,
    { from: ["cancelled"], to: "waiting", remove: ["failure", "retries", "lease", "builtBy", "finishedAt"], addAttempt: 1 },
    now,
  );
  if (!moved) return false;
  await mirrorStatus(moved);
  await advance(drvPath, await pendingInputsOf(drvPath), work, now);
  return true;
}

/**
 * What registering does to a derivation that exists (core `registrationStep`): restart it,
 * merge this part into it (its input rows first), or keep it. A restart another registration
 * made first (two parts of one event at once) is followed by deciding again on what it made:
 * this part merges.
 */
async function takeIn(
  found: DerivationItem | undefined,
  event: DerivationEvent,
  markers: string[],
  rows: () => Promise<void>,
  rebuildFailures: boolean,
  now: Date,
): Promise<DerivationItem | undefined> {
  let current = found;
  for (let tries = 0; current && tries < REGISTRATION_TRIES; tries++) {
    const step = registrationStep({ created: false, status: current.status, rebuildFailures, part: event.part !== undefined });
    if (step === "keep") return current;
    await rows();
    if (step === "merge-part") return (await clearPart(event.drvPath, partMarker(event.part!.index))) ?? (await getDerivation(event.drvPath));
    const restarted = await restart(current, markers, event.sources, now);
    if (restarted) return restarted;
    current = await getDerivation(event.drvPath);
  }
  return current;
}

const partMarker = (index: number) => `#part/${index}`;

/** Runs `write` the first time it is called; later calls wait for that one. */
function onceOnly(write: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= write());
}

/** Markers of the parts other than this one, for a split event (none otherwise). */
const otherParts = (event: DerivationEvent): string[] =>
  event.part
    ? Array.from({ length: event.part.count }, (_, i) => i)
        .filter((i) => i !== event.part!.index)
        .map(partMarker)
    : [];

/**
 * Starts a failed, dependency-failed or cancelled derivation over; undefined if it was no
 * longer one of those. Its input rows are in already; the other parts' markers hold it until
 * they arrive. This evaluation's view of where its .drv and inputs are (`needs`) replaces the
 * old one; where its outputs were goes with them.
 */
async function restart(
  drv: DerivationItem,
  markers: string[],
  needs: DerivationEvent["sources"],
  now: Date,
): Promise<DerivationItem | undefined> {
  const moved = await moveDerivation(
    drv.drvPath,
    {
      from: RESTARTABLE,
      to: "waiting",
      set: {
        ...(markers.length ? { pendingParts: new Set(markers) } : {}),
        ...(needs ? { needs } : {}),
      },
      remove: [
        "failure",
        "retries",
        "lease",
        "builtBy",
        "finishedAt",
        "sources",
        "cacheProblems",
        ...(markers.length ? [] : ["pendingParts"]),
        ...(needs ? [] : ["needs"]),
      ],
      // A new attempt: a new task id, and a queue message SQS will not take for a duplicate.
      addAttempt: 1,
    },
    now,
  );
  if (moved) await mirrorStatus(moved);
  return moved;
}

/**
 * Looks at the inputs this event brought (core `advanceWaiting`) and moves the derivation on:
 * dependency-failed, or those with outputs cleared and queued if nothing else is pending.
 * Every input row comes with some event of the derivation, which advances its own.
 */
async function advance(drvPath: string, inputs: string[], work: WorkNotes, now: Date): Promise<void> {
  const statuses = await getDerivations(inputs);
  const step = advanceWaiting(inputs, (input) => statuses.get(input)?.status);
  if (step.type === "fail") return failDependent(drvPath, step.dependency, work, now);
  await clearPendingInputs(drvPath, step.inputs);
  await queueIfReady(drvPath, work, now);
}
