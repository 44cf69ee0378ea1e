import { advanceWaiting, builtInputOf, inputStatusFor, intrinsicConflict, partRegistration, queueKeyOf, registrationStep, RESTARTABLE } from "@nimbus/core";
import type { DerivationEvent } from "@nimbus/protocol";
import { putEdges } from "../storage/derivation-edges.ts";
import { adoptParts, clearPart, createDerivation, getDerivation, getDerivations, moveDerivation } from "../storage/derivations.ts";
import { putJobAttribute } from "../storage/job-attributes.ts";
import { attributeKey } from "../storage/keys.ts";
import type { DerivationItem } from "../storage/items.ts";
import { mirrorStatus, putJobDerivation } from "../storage/job-derivations.ts";
import { getJob } from "../storage/jobs.ts";
import { dropDerivationInputsBy, putDerivationInputs } from "../storage/derivation-inputs.ts";
import { inputsOnItemFields, markInputRows } from "../storage/inputs-on-item.ts";
import { clearPendingInputs, dropPendingInputsBy, pendingInputsOf, putPendingInputs } from "../storage/pending-inputs.ts";
import type { WorkNotes } from "./new-work.ts";
import { failDependent, queueIfReady } from "./settle.ts";

/**
 * What became of a registration: done, or `later` — a part of a derivation another job's
 * running evaluation is still registering (core `partRegistration`): its batch must come again.
 */
export type Registration = "done" | "later";

/** A registration that lost a race decides again on what it finds, at most this many times. */
const REGISTRATION_TRIES = 3;

/**
 * Adds one derivation an evaluation found to the shared graph and to the job. Order of
 * writes matters: edges first, then the inputs it waits for and the record of its inputs to
 * build (only when this registration creates, restarts or adds a part to it: a derivation
 * found settled or waiting already has its rows) — on the item itself when it creates it with
 * few inputs (storage/inputs-on-item.ts) — then the item, then a fresh look at the inputs — so
 * an input that settles at any moment either sees this derivation through its edge or is seen
 * here, and a derivation waiting with every part in has all its input rows.
 */
export async function registerDerivation(
  jobId: string,
  event: DerivationEvent,
  options: { rebuildFailures: boolean },
  work: WorkNotes,
  now = new Date(),
): Promise<Registration> {
  const at = now.toISOString();
  const inputs = [...new Set(event.inputDrvs)];
  await putEdges(event.drvPath, inputs);
  const rows = onceOnly(async () => {
    await Promise.all([putPendingInputs(event.drvPath, inputs, jobId), putDerivationInputs(event.drvPath, inputs, jobId)]);
  });
  // Until every part of a split event is in, the others' markers keep it from being ready.
  const markers = otherParts(event);
  // A whole event with few inputs creates the item with its inputs on it, and writes no rows.
  const onItem = event.part === undefined ? inputsOnItemFields(inputs, inputs) : undefined;
  const fresh: DerivationItem = { ...freshDerivation(jobId, event, markers, at), ...onItem };
  const existing = await getDerivation(event.drvPath);
  let created = false;
  if (!existing) {
    if (!onItem) await rows();
    created = await createDerivation(fresh);
  }
  const found = created ? fresh : (existing ?? (await getDerivation(event.drvPath)));
  // Its .drv path fixes these: an evaluation that disagrees with the registration is refused (docs/reliability.md, "What an evaluator may assert").
  const conflict = found && !created ? intrinsicConflict(found, fresh) : undefined;
  if (conflict) {
    await refuseConflict(jobId, event.drvPath, conflict);
    return "done";
  }
  const taken = created ? fresh : await takeIn(found, jobId, event, markers, rows, options.rebuildFailures, now);
  if (taken === "later") return "later";
  const current = taken;
  if (current) await putJobDerivation(jobId, current, event.excused);
  if (current?.status === "waiting") await advance(event.drvPath, inputs, work, now, { jobId, rebuildFailures: options.rebuildFailures });
  // A move made meanwhile may have been mirrored before the index showed this job's row: the
  // row is written once more by key, with the derivation as it is now. A cancel meanwhile came
  // from a job that did not see this one needs it (the index lagged): it starts again.
  let latest = await getDerivation(event.drvPath);
  if (latest?.status === "cancelled" && (await isEvaluating(jobId)) && (await restartCancelled(event.drvPath, work, now))) {
    latest = await getDerivation(event.drvPath);
  }
  if (latest && latest.version !== current?.version) await putJobDerivation(jobId, latest, event.excused);
  return "done";
}

/** The item a registration that creates the derivation writes: waiting, registered by `jobId`. */
export function freshDerivation(jobId: string, event: DerivationEvent, markers: readonly string[], at: string): DerivationItem {
  const requiredFeatures = [...new Set(event.requiredFeatures)].sort();
  return {
    drvPath: event.drvPath,
    system: event.system,
    requiredFeatures,
    outputs: event.outputs,
    ...(event.sources ? { needs: event.sources } : {}),
    status: "waiting",
    version: 0,
    registeredBy: jobId,
    // The jobs that need it, kept whole while it is unsettled (storage/items.ts): its moves' mirrors need not ask the index.
    jobIds: new Set([jobId]),
    ...(markers.length ? { pendingParts: new Set(markers) } : {}),
    queueKey: queueKeyOf(event.system, requiredFeatures),
    attempt: 0,
    createdAt: at,
    updatedAt: at,
    // The first entry of its status history (storage/derivations.ts appends the moves).
    history: [{ at, status: "waiting" }],
  };
}

export const isEvaluating = async (jobId: string) => (await getJob(jobId))?.status === "evaluating";

/**
 * Starts a cancelled derivation that a running job needs after all over, as it was: its part
 * markers and input rows are as the cancel left them, and are looked at again. Whether it did.
 */
export async function restartCancelled(drvPath: string, work: WorkNotes, now: Date): Promise<boolean> {
  return startOver(drvPath, { from: ["cancelled"], to: "waiting", remove: ["failure", "retries", "lease", "builtBy", "finishedAt"], addAttempt: 1 }, work, now);
}

/**
 * Starts over a derivation that failed on `dependency` while that dependency has been started
 * over or built since (core `staleDependencyFailure`): waiting again, its inputs looked at
 * afresh. Only while it is still dependency-failed on that one. Whether it did.
 */
export async function restartStaleDependencyFailure(drvPath: string, dependency: string, work: WorkNotes, now: Date): Promise<boolean> {
  return startOver(
    drvPath,
    {
      from: ["dependency-failed"],
      to: "waiting",
      remove: ["failure", "finishedAt"],
      condition: { expression: "#failure.#dependency = :dependency", names: { "#failure": "failure", "#dependency": "dependency" }, values: { ":dependency": dependency } },
      note: { reason: `${dependency} is being built again` },
    },
    work,
    now,
  );
}

/** Moves a settled derivation back to waiting, copies the move to its jobs and looks at its pending inputs afresh. Whether it moved. */
async function startOver(drvPath: string, move: Parameters<typeof moveDerivation>[1], work: WorkNotes, now: Date): Promise<boolean> {
  const moved = await moveDerivation(drvPath, move, now);
  if (!moved) return false;
  await mirrorStatus(moved);
  await lookAgainAtInputs(drvPath, work, now);
  return true;
}

/**
 * Looks at a waiting derivation's pending inputs afresh: clears those built, queues it when none
 * is left, fails it on a failed one. Every step is conditional, so a look that finds nothing new
 * changes nothing. Whether it found something to do (an input settled that had not told it).
 */
export async function lookAgainAtInputs(drvPath: string, work: WorkNotes, now: Date): Promise<boolean> {
  return advance(drvPath, await pendingInputsOf(drvPath), work, now);
}

/**
 * What registering does to a derivation that exists (core `registrationStep`): restart it
 * (`jobId` registers it now), take this part in (below), or keep it. A restart or take-over
 * another registration made first (two parts of one event at once) is followed by deciding
 * again on what it made: this part merges.
 *
 * A part of a split derivation (core `partRegistration`) is merged when this job registered
 * it (its input rows first), dropped once every part is in, put off (`later`) while the job
 * that registered it still evaluates, and taken over when that evaluation is over with parts
 * still missing: this job registers it, its other parts are awaited instead, and the rows
 * the earlier registration wrote go (a row this job writes again stays: rows name their job).
 */
async function takeIn(
  found: DerivationItem | undefined,
  jobId: string,
  event: DerivationEvent,
  markers: string[],
  rows: () => Promise<void>,
  rebuildFailures: boolean,
  now: Date,
): Promise<DerivationItem | undefined | "later"> {
  let current = found;
  for (let tries = 0; current && tries < REGISTRATION_TRIES; tries++) {
    const step = registrationStep({ created: false, status: current.status, rebuildFailures, part: event.part !== undefined });
    if (step === "keep") return current;
    if (step === "merge-part") {
      const registrar = current.registeredBy && current.registeredBy !== jobId ? await getJob(current.registeredBy) : undefined;
      const registrarEvaluating = registrar?.status === "evaluating" && ["queued", "running"].includes(registrar.evaluation.status);
      const partsMissing = (current.pendingParts?.size ?? 0) > 0;
      const take = partRegistration({ registeredBy: current.registeredBy, jobId, partsMissing, registrarEvaluating });
      if (take === "ignore") return current;
      if (take === "later") return "later";
      await rowsOf(current, rows);
      if (take === "merge") return (await clearPart(event.drvPath, partMarker(event.part!.index))) ?? (await getDerivation(event.drvPath));
      const adopted = await adoptParts(event.drvPath, current.registeredBy, jobId, markers, event.sources);
      if (adopted) {
        // The earlier registration's parts are replaced: its rows go (a row this job wrote again stays).
        await Promise.all([dropPendingInputsBy(event.drvPath, current.registeredBy!), dropDerivationInputsBy(event.drvPath, current.registeredBy!)]);
        return adopted;
      }
      current = await getDerivation(event.drvPath);
      continue;
    }
    await rowsOf(current, rows);
    const restarted = await restart(current, jobId, markers, event.sources, now);
    if (restarted) return restarted;
    current = await getDerivation(event.drvPath);
  }
  return current;
}

/** The job's evaluation disagrees with how the derivation was registered: an evaluation error of the job, naming both. */
export async function refuseConflict(jobId: string, drvPath: string, conflict: string): Promise<void> {
  const name = drvPath.slice(drvPath.lastIndexOf("/") + 1);
  await putJobAttribute({
    jobId,
    attribute: attributeKey(["<conflicting derivation>", name]),
    path: ["<conflicting derivation>", name],
    drvPath,
    error: `${drvPath} was registered by another evaluation with other fields than this one reports: ${conflict}. Its .drv path fixes them, so one of the two evaluating agents reported falsely; the registration is kept and this job fails (docs/reliability.md, "What an evaluator may assert")`.slice(0, 8000),
  });
}

/** Writes this registration's input rows of an item that exists, saying so on it first when it keeps its inputs on it. */
async function rowsOf(item: DerivationItem, rows: () => Promise<void>): Promise<void> {
  if (item.inputsOnItem && !item.inputRows) await markInputRows(item.drvPath);
  await rows();
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
 * Starts a failed, dependency-failed or cancelled derivation over, registered by `jobId` now;
 * undefined if it was no longer one of those. Its input rows are in already; the other parts' markers hold it until
 * they arrive. This evaluation's view of where its .drv and inputs are (`needs`) replaces the
 * old one; where its outputs were goes with them.
 */
async function restart(
  drv: DerivationItem,
  jobId: string,
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
        registeredBy: jobId,
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
 * Every input row comes with some event of the derivation, which advances its own. For a
 * job's registration, a failure the job starts over is pending (core `inputStatusFor`).
 */
async function advance(drvPath: string, inputs: string[], work: WorkNotes, now: Date, registration?: { jobId: string; rebuildFailures: boolean }): Promise<boolean> {
  const statuses = await getDerivations(inputs);
  const step = advanceWaiting(inputs, (input) => (registration ? inputStatusFor(statuses.get(input), registration) : statuses.get(input)?.status));
  if (step.type === "fail") {
    await failDependent(drvPath, step.dependency, work, now);
    return true;
  }
  await clearPendingInputs(
    drvPath,
    step.inputs,
    step.inputs.map((input) => builtInputOf(statuses.get(input)!)),
  );
  const queued = await queueIfReady(drvPath, work, now);
  return step.inputs.length > 0 || queued !== undefined;
}
