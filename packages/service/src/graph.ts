import { queueKeyOf, readinessOf, isSuccess } from "@nimbus/core";
import type { DerivationEvent, DerivationStatus } from "@nimbus/protocol";
import { sendToBuildQueue } from "./build-queues.ts";
import {
  addInputs,
  clearPendingInputs,
  createDerivation,
  getDerivation,
  getDerivations,
  markPropagated,
  moveDerivation,
} from "./derivations.ts";
import { batchPut, queryAll } from "./dynamo-batch.ts";
import { noteNewWork } from "./dispatch.ts";
import type { DerivationItem, EdgeItem } from "./items.ts";
import { finishJobIfDone } from "./jobs.ts";
import { mirrorStatus, putJobDerivation } from "./job-derivations.ts";
import { tableName } from "./resource.ts";

/** Failures a user must ask to rebuild; cancellations restart whenever a job needs them again. */
const RESTARTABLE: DerivationStatus[] = ["failed", "dependency-failed", "cancelled"];

/**
 * Adds one derivation an evaluation found to the shared graph and to the job. Order of
 * writes matters: edges first, then the item, then a fresh look at the inputs — so an input
 * that settles at any moment either sees this derivation through its edge or is seen here.
 */
export async function registerDerivation(
  jobId: string,
  event: DerivationEvent,
  options: { rebuildFailures: boolean },
  now = new Date(),
): Promise<void> {
  const at = now.toISOString();
  const inputs = [...new Set(event.inputDrvs)];
  await batchPut(
    tableName("Edges"),
    inputs.map((inputDrv): EdgeItem => ({ inputDrv, dependentDrv: event.drvPath })),
  );
  // Until every part of a split event is in, the others' markers keep it from being ready.
  const pending = [...inputs, ...otherParts(event)];
  const requiredFeatures = [...new Set(event.requiredFeatures)].sort();
  const fresh: DerivationItem = {
    drvPath: event.drvPath,
    system: event.system,
    requiredFeatures,
    outputs: event.outputs,
    ...(inputs.length ? { inputDrvs: new Set(inputs) } : {}),
    status: "waiting",
    ...(pending.length ? { pendingInputs: new Set(pending) } : {}),
    queueKey: queueKeyOf(event.system, requiredFeatures),
    attempt: 0,
    createdAt: at,
    updatedAt: at,
  };
  let current = (await createDerivation(fresh)) ? fresh : await getDerivation(event.drvPath);
  if (current && RESTARTABLE.includes(current.status) && (current.status === "cancelled" || options.rebuildFailures)) {
    current = await restart(current, inputs, pending, now);
  } else if (current !== fresh && current?.status === "waiting" && event.part) {
    current = await mergePart(event.drvPath, inputs, partMarker(event.part.index));
  }
  await putJobDerivation(jobId, event.drvPath, current?.status ?? "waiting", at);
  if (current?.status === "waiting") await advance(current, now);
  // The job row may have been written after a move's mirror: re-read and mirror once more.
  const latest = await getDerivation(event.drvPath);
  if (latest && latest.status !== current?.status) await mirrorStatus(latest.drvPath, latest.status, latest.updatedAt);
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

/** Starts a failed, dependency-failed or cancelled derivation over (a rebuild was asked for). */
async function restart(drv: DerivationItem, inputs: string[], pending: string[], now: Date) {
  const moved = await moveDerivation(
    drv.drvPath,
    {
      from: RESTARTABLE,
      to: "waiting",
      set: {
        ...(inputs.length ? { inputDrvs: new Set(inputs) } : {}),
        ...(pending.length ? { pendingInputs: new Set(pending) } : {}),
      },
      remove: [
        "failure",
        "lease",
        "builtBy",
        "finishedAt",
        ...(inputs.length ? [] : ["inputDrvs"]),
        ...(pending.length ? [] : ["pendingInputs"]),
      ],
      // A new attempt: a new task id, and a queue message SQS will not take for a duplicate.
      addAttempt: 1,
    },
    now,
  );
  if (moved) await mirrorStatus(moved.drvPath, moved.status, moved.updatedAt);
  return moved ?? (await getDerivation(drv.drvPath));
}

/** Looks at a waiting derivation's inputs and moves it on: queued, dependency-failed, or still waiting. */
async function advance(drv: DerivationItem, now: Date): Promise<void> {
  const inputs = [...(drv.inputDrvs ?? [])];
  const statuses = await getDerivations(inputs);
  const readiness = readinessOf(inputs, (input) => statuses.get(input)?.status);
  if (readiness.kind === "dependency-failed") {
    await failDependent(drv.drvPath, readiness.dependency, now);
    return;
  }
  const done = inputs.filter((input) => isSuccess(statuses.get(input)?.status ?? "waiting"));
  const after = await clearPendingInputs(drv.drvPath, done);
  if (after && after.status === "waiting" && !after.pendingInputs?.size) await enqueue(after.drvPath, now);
}

/** waiting → queued, then onto its build queue, then wake an idle agent that can build it. */
async function enqueue(drvPath: string, now: Date): Promise<void> {
  const queued = await moveDerivation(
    drvPath,
    {
      from: ["waiting"],
      to: "queued",
      set: { queuedAt: now.toISOString() },
      condition: { expression: "attribute_not_exists(pendingInputs)" },
    },
    now,
  );
  if (!queued) return;
  await sendToBuildQueue(queued);
  await mirrorStatus(drvPath, "queued", queued.updatedAt);
  noteNewWork(queued.queueKey);
}

async function failDependent(drvPath: string, dependency: string, now: Date): Promise<void> {
  const failed = await moveDerivation(
    drvPath,
    {
      from: ["waiting"],
      to: "dependency-failed",
      set: { failure: { reason: `input ${dependency} failed`, dependency }, finishedAt: now.toISOString() },
      remove: ["pendingInputs"],
    },
    now,
  );
  if (failed) await settled(failed, now);
}

/**
 * After a derivation settles: mirror it into its jobs, move its dependents on (ready when
 * this was their last pending input; dependency-failed, transitively, when this failed),
 * and finish the jobs that have nothing left to do.
 */
export async function settled(drv: DerivationItem, now = new Date()): Promise<void> {
  const jobIds = await mirrorStatus(drv.drvPath, drv.status, drv.updatedAt);
  const dependents = await queryAll<EdgeItem>({
    TableName: tableName("Edges"),
    KeyConditionExpression: "inputDrv = :drv",
    ExpressionAttributeValues: { ":drv": drv.drvPath },
  });
  for (const { dependentDrv } of dependents) {
    if (isSuccess(drv.status)) {
      const after = await clearPendingInputs(dependentDrv, [drv.drvPath]);
      if (after && !after.pendingInputs?.size) await enqueue(dependentDrv, now);
    } else {
      await failDependent(dependentDrv, drv.drvPath, now);
    }
  }
  await Promise.all(jobIds.map((jobId) => finishJobIfDone(jobId)));
  await markPropagated(drv.drvPath);
}
