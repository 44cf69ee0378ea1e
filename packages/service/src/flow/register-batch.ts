/**
 * Registers the derivations of one `evaluation-events` batch together (docs/architecture.md,
 * "push → job"): the same writes, in the same order, as flow/register-derivation.ts makes for
 * one, but each step done for the whole batch at once — BatchGetItem for the derivations it
 * names, then for the inputs several new ones share; BatchWriteItem for edges, attributes, the
 * input rows of a derivation with too many inputs for its item (storage/inputs-on-item.ts) and
 * the job's rows of the derivations it creates, then only the writes a race needs one by one
 * (creating a derivation, with its inputs on it — queued already when nothing is pending; the
 * job's row of one that existed; the move to queued). What is rare and subtle (a part of a split derivation, a restart, a derivation named
 * twice in the batch, a creation lost to another registration) goes through registerDerivation
 * itself.
 */
import { advanceWaiting, builtInputOf, inputStatusFor, intrinsicConflict, isSuccess, mayBeReady, registrationStep, type BuiltInput } from "@nimbus/core";
import type { DerivationEvent } from "@nimbus/protocol";
import pMap from "p-map";
import { buildQueueUrl, sendToBuildQueues } from "../storage/build-queues.ts";
import { bornQueued, createDerivation, getDerivations } from "../storage/derivations.ts";
import { WRITES_AT_ONCE } from "../storage/dynamo-batch.ts";
import type { DerivationItem, EdgePlacement, JobAttributeItem } from "../storage/items.ts";
import { putJobDerivation, putNewJobDerivations } from "../storage/job-derivations.ts";
import { inputsOnItemFields } from "../storage/inputs-on-item.ts";
import { clearPendingInputs } from "../storage/pending-inputs.ts";
import { putRegistrationRows } from "../storage/registration-rows.ts";
import type { WorkNotes } from "./new-work.ts";
import { freshDerivation, isEvaluating, refuseConflict, registerDerivation, restartCancelled, type Registration } from "./register-derivation.ts";
import { failDependent, queueIfReady } from "./settle.ts";


/** One derivation the batch registers itself: the event, its inputs, and the item as this registration left it. */
interface Registering {
  event: DerivationEvent;
  inputs: string[];
  current: DerivationItem;
  /** This registration created it (its inputs on it, or its input rows written first). */
  created: boolean;
}

/**
 * Registers the batch's derivation events, and writes the job's `attributes` rows with its edges.
 * Returns each registration's outcome (core `partRegistration`'s `later` only from a part).
 */
export async function registerBatch(
  jobId: string,
  events: readonly DerivationEvent[],
  attributes: readonly JobAttributeItem[],
  options: { rebuildFailures: boolean },
  work: WorkNotes,
  now: Date,
): Promise<Registration[]> {
  const at = now.toISOString();
  const named = new Map<string, number>();
  for (const event of events) named.set(event.drvPath, (named.get(event.drvPath) ?? 0) + 1);
  // A part, or a derivation named twice, goes alone: its registrations depend on one another.
  const alone = events.filter((event) => event.part !== undefined || named.get(event.drvPath)! > 1);
  const together = events.filter((event) => event.part === undefined && named.get(event.drvPath) === 1);
  // The derivations it names first: in a re-evaluation most exist, and those need no input read here.
  const existing = await getDerivations(together.map((event) => event.drvPath));
  // Then the inputs that more than one new derivation of the batch names (a toolchain, a hub):
  // one with outputs keeps them (nothing moves out of succeeded or cached), so the new items need
  // not wait for it. An input only one names is pending on the new item unread: the fresh look
  // after the items are written (advanceAll) reads it anyway while it has no outputs, and clears
  // it if it has.
  const creating = together.filter((event) => !existing.has(event.drvPath));
  for (const [drvPath, item] of await getDerivations(sharedInputs(creating))) existing.set(drvPath, item);

  const toCreate: { event: DerivationEvent; inputs: string[]; fresh: DerivationItem; built?: BuiltInput[] }[] = [];
  const kept: Omit<Registering, "created">[] = [];
  const conflicts: { event: DerivationEvent; conflict: string }[] = [];
  for (const event of together) {
    const inputs = [...new Set(event.inputDrvs)];
    const fresh = freshDerivation(jobId, event, [], at);
    const found = existing.get(event.drvPath);
    if (!found) {
      const pending = inputs.filter((input) => !isSuccess(existing.get(input)?.status ?? "waiting"));
      // The inputs read with outputs go on the item with them: queueing it then reads none.
      const built = inputs.flatMap((input) => (pending.includes(input) ? [] : [builtInputOf(existing.get(input)!)]));
      const onItem = inputsOnItemFields(inputs, pending, built);
      const { inputsBuilt, ...item } = { ...fresh, ...onItem };
      // Ready already: queued in the write that creates it, and sent while the batch goes on — its inputs' outputs in its message, not on the item (a retry or re-send reads them).
      if (onItem && pending.length === 0) toCreate.push({ event, inputs, fresh: bornQueued(item, now), built });
      else toCreate.push({ event, inputs, fresh: { ...item, ...(inputsBuilt ? { inputsBuilt } : {}) } });
      continue;
    }
    // Its .drv path fixes these (docs/reliability.md, "What an evaluator may assert").
    const conflict = intrinsicConflict(found, fresh);
    if (conflict) conflicts.push({ event, conflict });
    else if (registrationStep({ created: false, status: found.status, rebuildFailures: options.rebuildFailures, part: false }) === "keep") {
      kept.push({ event, inputs, current: found });
    } else alone.push(event); // a restart
  }

  // The items: a creation lost to another registration decides again, alone. Those born queued
  // first, sent, and idle agents woken for them before anything else is written: a wake running
  // beside a batch's writes waits behind them in the table (docs/scale.md, idle dispatch). They
  // wait for nothing, so no edge or input row need precede them: a dependent's own edge does,
  // written below before its item.
  const created: Registering[] = [];
  const toSend: { drv: DerivationItem; known?: BuiltInput[] }[] = [];
  const create = async ({ event, inputs, fresh, built }: (typeof toCreate)[number]) => {
    if (!(await createDerivation(fresh))) return void alone.push(event);
    created.push({ event, inputs, current: fresh, created: true });
    if (fresh.status === "queued") toSend.push({ drv: fresh, ...(built ? { known: built } : {}) });
  };
  const bornQueuedFirst = toCreate.filter(({ fresh }) => fresh.status === "queued");
  // Their build queues looked up (created on first use) beside their creations.
  for (const { fresh } of bornQueuedFirst) buildQueueUrl(fresh.queueKey).catch(() => {});
  if (bornQueuedFirst.length > 0) {
    await pMap(bornQueuedFirst, create, { concurrency: WRITES_AT_ONCE });
    // Their messages ten to a request (the wake waits for all of them anyway), not one each.
    await sendToBuildQueues(toSend);
    for (const { drv } of toSend) work.addBuildQueue(drv.queueKey);
    await work.wakeFirst();
  }
  // Edges (every registration writes them), then the input rows of those it creates with too
  // many inputs for the item (storage/inputs-on-item.ts), before any item that waits on them.
  const edges = [
    // Those it creates with one input: the row says where it may be built (storage/items.ts `EdgePlacement`).
    ...toCreate.map(({ event, inputs, fresh }) => ({ event, inputs, ...(inputs.length === 1 ? { sole: placementOf(fresh) } : {}) })),
    ...kept,
    ...conflicts.map(({ event }) => ({ event, inputs: [...new Set(event.inputDrvs)] })),
  ].flatMap(({ event, inputs, sole }: { event: DerivationEvent; inputs: string[]; sole?: EdgePlacement }) =>
    inputs.map((inputDrv) => ({ inputDrv, dependentDrv: event.drvPath, ...(sole ? { sole } : {}) })),
  );
  const inputRows = toCreate
    .filter(({ fresh }) => !fresh.inputsOnItem)
    .flatMap(({ event, inputs }) => inputs.map((inputDrv) => ({ drvPath: event.drvPath, inputDrv, by: jobId })));
  await putRegistrationRows({ edges, inputRows, attributes: [...attributes] });
  await pMap(
    toCreate.filter(({ fresh }) => fresh.status !== "queued"),
    create,
    { concurrency: WRITES_AT_ONCE },
  );
  const registered: Registering[] = [...created, ...kept.map((k) => ({ ...k, created: false }))];
  // Independent writes, in flight together.
  await Promise.all([
    pMap(conflicts, ({ event, conflict }) => refuseConflict(jobId, event.drvPath, conflict), { concurrency: WRITES_AT_ONCE }),
    putNewJobDerivations(jobId, created.map(({ event, current }) => ({ copy: current, excused: event.excused }))),
    pMap(kept, ({ event, current }) => putJobDerivation(jobId, current, event.excused), { concurrency: WRITES_AT_ONCE }),
  ]);
  const queued = await advanceAll(registered.filter((r) => r.current.status === "waiting"), { jobId, ...options }, work, now);
  await lookAgain(jobId, registered, queued, work, now);

  const outcomes = await pMap(alone, (event) => registerDerivation(jobId, event, options, work, now), { concurrency: 8 });
  return [...registered.map((): Registration => "done"), ...conflicts.map((): Registration => "done"), ...outcomes];
}

/** Where a derivation may be built, as its edge row keeps it. */
const placementOf = (drv: DerivationItem): EdgePlacement => ({ system: drv.system, requiredFeatures: drv.requiredFeatures, ...(drv.needs ? { needs: drv.needs } : {}) });

/** The inputs more than one of these events names. */
function sharedInputs(events: readonly DerivationEvent[]): string[] {
  const named = new Map<string, number>();
  for (const event of events) for (const input of new Set(event.inputDrvs)) named.set(input, (named.get(input) ?? 0) + 1);
  return [...named].filter(([, count]) => count > 1).map(([input]) => input);
}

/**
 * A fresh look at the inputs of every waiting derivation of the batch, after all its items are
 * written (core `advanceWaiting`): fail it, or clear the inputs with outputs and queue it when
 * nothing else is pending. One this registration created waits for each input it lists
 * without outputs when it was read, or not read (on the item or in rows), so while one of them
 * has none it is not ready, and that input's settle (which finds it through its edge) queues
 * it: only those with every such input built are looked at again — and those this look's clear
 * left with nothing pending (another input's settle cleared its own in between, and saw this
 * one still pending), which the clear that empties the set queues, as a settle's does.
 */
async function advanceAll(
  waiting: readonly Registering[],
  registration: { jobId: string; rebuildFailures: boolean },
  work: WorkNotes,
  now: Date,
): Promise<Map<string, DerivationItem>> {
  const queued = new Map<string, DerivationItem>();
  if (waiting.length === 0) return queued;
  const looked = waiting.map((r) => ({ ...r, looking: r.created && r.current.inputsOnItem ? [...(r.current.pendingInputs ?? [])] : r.inputs }));
  const statuses = await getDerivations([...new Set(looked.flatMap((r) => r.looking))]);
  const failing: { drvPath: string; dependency: string }[] = [];
  const cleared: { drvPath: string; inputs: string[]; built: BuiltInput[] }[] = [];
  const lookAt = new Set<string>();
  for (const { event, looking, created } of looked) {
    const step = advanceWaiting(looking, (input) => inputStatusFor(statuses.get(input), registration));
    if (step.type === "fail") {
      failing.push({ drvPath: event.drvPath, dependency: step.dependency });
      continue;
    }
    if (step.inputs.length > 0) cleared.push({ drvPath: event.drvPath, inputs: step.inputs, built: step.inputs.map((input) => builtInputOf(statuses.get(input)!)) });
    if (!created || step.inputs.length === looking.length) lookAt.add(event.drvPath);
  }
  // Each clear returns the item after it, read by the queueing below.
  const afterClears = new Map<string, DerivationItem | undefined>();
  await pMap(cleared, async ({ drvPath, inputs, built }) => afterClears.set(drvPath, await clearPendingInputs(drvPath, inputs, built)), { concurrency: WRITES_AT_ONCE });
  for (const [drvPath, after] of afterClears) if (after === undefined || (mayBeReady(after) && !after.pendingInputs?.size)) lookAt.add(drvPath);
  await pMap(failing, ({ drvPath, dependency }) => failDependent(drvPath, dependency, work, now), { concurrency: WRITES_AT_ONCE });
  await pMap(
    [...lookAt],
    async (drvPath) => {
      const after = afterClears.get(drvPath);
      const moved = await queueIfReady(drvPath, work, now, after ? { item: after } : {});
      if (moved) queued.set(drvPath, moved);
    },
    { concurrency: WRITES_AT_ONCE },
  );
  return queued;
}

/**
 * As registerDerivation does last, for the whole batch: a move made meanwhile may have been
 * mirrored before the index showed this job's row, so a row behind the derivation is written
 * again by key — but for a move to `queued` this registration made itself, whose mirror writes
 * this job's row (its item names the job) once the wake is done; a derivation a cancel reached
 * meanwhile (from a job that did not see this one) starts again while this job evaluates.
 */
async function lookAgain(jobId: string, registered: readonly Registering[], queued: ReadonlyMap<string, DerivationItem>, work: WorkNotes, now: Date): Promise<void> {
  if (registered.length === 0) return;
  const latest = await getDerivations(registered.map((r) => r.event.drvPath));
  const cancelled = registered.filter((r) => latest.get(r.event.drvPath)?.status === "cancelled");
  if (cancelled.length > 0 && (await isEvaluating(jobId))) {
    const restarted = await pMap(cancelled, (r) => restartCancelled(r.event.drvPath, work, now), { concurrency: WRITES_AT_ONCE });
    if (restarted.some(Boolean)) for (const [drvPath, item] of await getDerivations(cancelled.map((r) => r.event.drvPath))) latest.set(drvPath, item);
  }
  await pMap(
    registered.filter((r) => {
      const item = latest.get(r.event.drvPath);
      if (!item || item.version === r.current.version) return false;
      const own = queued.get(r.event.drvPath);
      return !(own && own.version === item.version && own.jobIds?.has(jobId));
    }),
    (r) => putJobDerivation(jobId, latest.get(r.event.drvPath)!, r.event.excused),
    { concurrency: WRITES_AT_ONCE },
  );
}
