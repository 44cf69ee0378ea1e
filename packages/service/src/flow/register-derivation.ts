import { advanceWaiting, intrinsicConflict, isReadyToQueue, partRegistration, queueKeyOf, registrationStep, RESTARTABLE } from "@nimbus/core";
import type { DerivationEvent } from "@nimbus/protocol";
import { putEdges } from "../storage/derivation-edges.ts";
import { addInputs, adoptParts, clearPendingInputs, createDerivation, getDerivation, getDerivations, moveDerivation } from "../storage/derivations.ts";
import { putJobAttribute } from "../storage/job-attributes.ts";
import { getJob } from "../storage/jobs.ts";
import { attributeKey } from "../storage/keys.ts";
import type { DerivationItem } from "../storage/items.ts";
import { mirrorStatus, putJobDerivation } from "../storage/job-derivations.ts";
import type { WorkNotes } from "./new-work.ts";
import { enqueue, failDependent } from "./settle.ts";

/**
 * What became of a registration: done, or `later` — a part of a derivation another job's
 * running evaluation is still registering (core `partRegistration`): its batch must come again.
 */
export type Registration = "done" | "later";

/**
 * Adds one derivation an evaluation found to the shared graph and to the job. Order of
 * writes matters: edges first, then the item, then a fresh look at the inputs — so an input
 * that settles at any moment either sees this derivation through its edge or is seen here.
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
  // Until every part of a split event is in, the others' markers keep it from being ready.
  const pending = [...inputs, ...otherParts(event)];
  const requiredFeatures = [...new Set(event.requiredFeatures)].sort();
  const fresh: DerivationItem = {
    drvPath: event.drvPath,
    system: event.system,
    requiredFeatures,
    outputs: event.outputs,
    ...(inputs.length ? { inputDrvs: new Set(inputs) } : {}),
    ...(event.sources ? { needs: event.sources } : {}),
    status: "waiting",
    ...(pending.length ? { pendingInputs: new Set(pending) } : {}),
    queueKey: queueKeyOf(event.system, requiredFeatures),
    registeredBy: jobId,
    attempt: 0,
    createdAt: at,
    updatedAt: at,
  };
  const created = await createDerivation(fresh);
  let current = created ? fresh : await getDerivation(event.drvPath);
  // Its .drv path fixes these: an evaluation that disagrees with the registration is refused (docs/reliability.md, "What an evaluator may assert").
  const conflict = current && !created ? intrinsicConflict(current, fresh) : undefined;
  if (conflict) {
    await refuseConflict(jobId, event.drvPath, conflict);
    return "done";
  }
  const step = registrationStep({ created, status: current?.status, rebuildFailures: options.rebuildFailures, part: event.part !== undefined });
  if (current && step === "restart") current = await restart(current, jobId, inputs, pending, event.sources, now);
  else if (current && step === "merge-part") {
    const taken = await takePart(current, jobId, inputs, pending, event.sources, partMarker(event.part!.index));
    if (taken === "later") return "later";
    current = taken;
  }
  await putJobDerivation(jobId, event.drvPath, current?.status ?? "waiting", at);
  if (current?.status === "waiting") await advance(current, work, now);
  // The job row may have been written after a move's mirror: re-read and mirror once more.
  const latest = await getDerivation(event.drvPath);
  if (latest && latest.status !== current?.status) await mirrorStatus(latest.drvPath, latest.status, latest.updatedAt);
  return "done";
}

const partMarker = (index: number) => `#part/${index}`;

/** Markers of the parts other than this one, for a split event (none otherwise). */
const otherParts = (event: DerivationEvent): string[] =>
  event.part
    ? Array.from({ length: event.part.count }, (_, i) => i)
        .filter((i) => i !== event.part!.index)
        .map(partMarker)
    : [];

/** Adds one part's inputs to a waiting derivation, then takes away that part's marker (two writes: DynamoDB allows one action per attribute). */
async function mergePart(drvPath: string, inputs: string[], marker: string): Promise<DerivationItem | undefined> {
  await addInputs(drvPath, inputs);
  return clearPendingInputs(drvPath, [marker]);
}

/**
 * A part of a split derivation already registered (core `partRegistration`): merged when this
 * job registered it, dropped once every part is in, put off while the job that registered it
 * still evaluates, taken over when that evaluation is over with parts still missing.
 */
async function takePart(
  drv: DerivationItem,
  jobId: string,
  inputs: string[],
  pending: string[],
  needs: DerivationEvent["sources"],
  marker: string,
): Promise<DerivationItem | undefined | "later"> {
  const registrar = drv.registeredBy && drv.registeredBy !== jobId ? await getJob(drv.registeredBy) : undefined;
  const registrarEvaluating = registrar?.status === "evaluating" && ["queued", "running"].includes(registrar.evaluation.status);
  const partsMissing = [...(drv.pendingInputs ?? [])].some((input) => input.startsWith("#part/"));
  switch (partRegistration({ registeredBy: drv.registeredBy, jobId, partsMissing, registrarEvaluating })) {
    case "merge":
      return mergePart(drv.drvPath, inputs, marker);
    case "ignore":
      return drv;
    case "later":
      return "later";
    case "adopt":
      return (await adoptParts(drv.drvPath, drv.registeredBy, jobId, inputs, pending, needs)) ?? (await getDerivation(drv.drvPath));
  }
}

/** The job's evaluation disagrees with how the derivation was registered: an evaluation error of the job, naming both. */
async function refuseConflict(jobId: string, drvPath: string, conflict: string): Promise<void> {
  const name = drvPath.slice(drvPath.lastIndexOf("/") + 1);
  await putJobAttribute({
    jobId,
    attribute: attributeKey(["<conflicting derivation>", name]),
    path: ["<conflicting derivation>", name],
    drvPath,
    error: `${drvPath} was registered by another evaluation with other fields than this one reports: ${conflict}. Its .drv path fixes them, so one of the two evaluating agents reported falsely; the registration is kept and this job fails (docs/reliability.md, "What an evaluator may assert")`.slice(0, 8000),
  });
}

/** Starts a failed, dependency-failed or cancelled derivation over (core `registrationStep` said so); `jobId` registers it now. */
async function restart(
  drv: DerivationItem,
  jobId: string,
  inputs: string[],
  pending: string[],
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
        ...(inputs.length ? { inputDrvs: new Set(inputs) } : {}),
        ...(pending.length ? { pendingInputs: new Set(pending) } : {}),
        // This evaluation's view of where its .drv and inputs are replaces the old one.
        ...(needs ? { needs } : {}),
      },
      remove: [
        "failure",
        "lease",
        "builtBy",
        "finishedAt",
        "sources",
        "cacheProblems",
        ...(inputs.length ? [] : ["inputDrvs"]),
        ...(pending.length ? [] : ["pendingInputs"]),
        ...(needs ? [] : ["needs"]),
      ],
      // A new attempt: a new task id, and a queue message SQS will not take for a duplicate.
      addAttempt: 1,
    },
    now,
  );
  if (moved) await mirrorStatus(moved.drvPath, moved.status, moved.updatedAt);
  return moved ?? (await getDerivation(drv.drvPath));
}

/** Looks at a waiting derivation's inputs (core `advanceWaiting`) and moves it on: queued, dependency-failed, or still waiting. */
async function advance(drv: DerivationItem, work: WorkNotes, now: Date): Promise<void> {
  const inputs = [...(drv.inputDrvs ?? [])];
  const statuses = await getDerivations(inputs);
  const step = advanceWaiting(inputs, (input) => statuses.get(input)?.status);
  if (step.type === "fail") return failDependent(drv.drvPath, step.dependency, work, now);
  const after = await clearPendingInputs(drv.drvPath, step.inputs);
  if (after && isReadyToQueue(after)) await enqueue(after.drvPath, work, now);
}
