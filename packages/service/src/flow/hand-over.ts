/**
 * Hand-over (docs/scale.md, "Hand-over"): when a `build-result` makes a dependent ready and the
 * agent that sent it may take it now (core `mayHandOver`), the dependent goes to that agent
 * without its build queue — one conditional write moves it `waiting → building` with the lease,
 * beside the reservation of the slot the result freed, then the `build` is sent, carrying the
 * result's acknowledgement (flow/result-acks.ts). What a handler dying between those writes
 * leaves, the sweeper repairs (docs/reliability.md).
 */
import { builtInputOf, mayHandOver, taskInputs, type HandOverState } from "@nimbus/core";
import { leaseIs, moveDerivation, versionIs, type Move } from "../storage/derivations.ts";
import { allOf } from "../storage/condition-terms.ts";
import type { DerivationItem, EdgePlacement, SessionFields } from "../storage/items.ts";
import type { Condition } from "../storage/table.ts";
import { releaseTask, reserveTask } from "../storage/sessions.ts";
import type { FreedSlot } from "./freed-slot.ts";
import type { WorkNotes } from "./new-work.ts";
import { evaluationsMayWait } from "./rare-queues.ts";
import { sendTask } from "./task-delivery.ts";
import { buildStart, buildTaskMessage, builtInputs, needsOf } from "./tasks/build-task.ts";

/**
 * How a hand-over of a ready derivation ended: `declined` (queue it as usual), `handed` (leased
 * to the reporting agent and sent), `moved` (another writer moved it first: nothing to do), or
 * `queued` (the slot was gone: the lease was taken back and it is queued, to be sent to its queue).
 */
export type HandOver = { type: "declined" } | { type: "handed" } | { type: "moved" } | { type: "queued"; queued: DerivationItem };

const declined: HandOver = { type: "declined" };

/**
 * Hands `drv`, read `waiting` with nothing pending, to the agent whose result readied it, if
 * it may take it. `readyAt`: when the invocation found it ready; `known`: inputs the caller has
 * read (the one that just settled).
 */
export async function handOver(drv: DerivationItem, work: WorkNotes, readyAt: Date, known: readonly DerivationItem[] = []): Promise<HandOver> {
  const reporter = work.handOverReporter();
  if (!reporter) return declined;
  const session = await reporter.load;
  const state = (): HandOverState => ({ handedOver: reporter.handedOver, evaluationsMayWait: work.evaluations || evaluationsMayWait() });
  // Nix's rule and the slots first: its inputs (on its item with the one just settled, else read) only for an agent that could build it.
  if (!session?.connectionId || !mayHandOver(session, { system: drv.system, requiredFeatures: drv.requiredFeatures, needs: [] }, state())) return declined;
  const inputs = await builtInputs(drv, known);
  // Taken (or not) without a pause in between: a wake that took the reporter meanwhile fills its slots instead.
  if (work.handOverReporter() !== reporter || !mayHandOver(session, needsOf(drv, inputs), state())) return declined;
  reporter.handedOver++;
  const outcome = await leaseAndReserve(drv, { condition: versionIs(drv) }, session, readyAt, reporter.slot);
  if (outcome.type !== "handed") {
    reporter.handedOver--;
    return outcome;
  }
  const { leased, taskId } = outcome;
  const task = buildTaskMessage(taskId, leased, taskInputs(inputs));
  // Its jobs' rows stay `waiting`: a build's start is no move of them (core `shownStatus`).
  await sendTask(session.sessionId, session.connectionId, reporter.ack?.carry(task) ?? task);
  return { type: "handed" };
}

/**
 * Hands over a dependent whose only input pending on its item is `settled`, in the write that
 * clears that input: `waiting → building` with the lease, conditional on that input being the
 * last one pending (on the item, no input rows, no part to come) and on no attempt yet — one
 * write, where clearing it and then handing it over are two. What it may be built by comes from
 * its edge row (`placement`: only a row naming one dependent with one input has it), so nothing
 * is read. `declined` (or `moved`: the condition did not hold) leaves the clear to the caller.
 */
export async function handOverOnClear(drvPath: string, placement: EdgePlacement, settled: DerivationItem, work: WorkNotes, readyAt: Date): Promise<HandOver> {
  const reporter = work.handOverReporter();
  if (!reporter) return declined;
  const session = await reporter.load;
  const inputs = [builtInputOf(settled)];
  // A peek: when it declines, the usual hand-over after the clear asks (and its dispatch looks).
  const state = { handedOver: reporter.handedOver, evaluationsMayWait: work.evaluations || evaluationsMayWait(Date.now(), { asking: false }) };
  if (!session?.connectionId || work.handOverReporter() !== reporter || !mayHandOver(session, needsOf(placement, inputs), state)) return declined;
  reporter.handedOver++;
  const lastInput = {
    expression: allOf("inputsOnItem = :onItem", "attribute_not_exists(inputRows)", "attribute_not_exists(pendingParts)", "size(pendingInputs) = :one", "contains(pendingInputs, :input)", "attempt = :first"),
    values: { ":onItem": true, ":one": 1, ":input": settled.drvPath, ":first": 0 },
  };
  const outcome = await leaseAndReserve({ drvPath, attempt: 0 }, { condition: lastInput, remove: ["pendingInputs"] }, session, readyAt, reporter.slot);
  if (outcome.type !== "handed") {
    reporter.handedOver--;
    return outcome;
  }
  const task = buildTaskMessage(outcome.taskId, outcome.leased, taskInputs(inputs));
  await sendTask(session.sessionId, session.connectionId, reporter.ack?.carry(task) ?? task);
  return { type: "handed" };
}

type Leased = { type: "handed"; leased: DerivationItem; taskId: string } | Exclude<HandOver, { type: "handed" }>;

/**
 * The two writes, at once: the lease (`waiting → building`, conditional on the version read, as
 * `queueIfReady`'s move is; `queuedAt` is when the invocation found it ready, as a move to
 * `queued` records it) and the slot. Each undoes the other when only one is made. They are
 * stamped with the time they are made, not the invocation's: the sweeper takes a lease older
 * than a heartbeat whose session holds no slot for it for an orphan.
 */
async function leaseAndReserve(
  drv: Pick<DerivationItem, "drvPath" | "attempt">,
  lease: { condition: Condition; remove?: string[] },
  session: SessionFields,
  readyAt: Date,
  slot?: FreedSlot,
): Promise<Leased> {
  const now = new Date();
  const { taskId, record, leaseFor } = buildStart(drv, now);
  const [leased, reserved] = await Promise.all([
    moveDerivation(
      drv.drvPath,
      {
        from: ["waiting"],
        to: "building",
        set: { lease: leaseFor(session.sessionId), queuedAt: readyAt.toISOString() },
        remove: ["inputsBuilt", ...(lease.remove ?? [])],
        note: { agent: session.agent.hostname },
        condition: lease.condition,
      },
      now,
    ),
    // The slot the result freed, handed from its task to this one in one write while it still holds it.
    slot ? slot.reserve(taskId, record, session.agent.concurrentTasks) : reserveTask(session.sessionId, taskId, record, session.agent.concurrentTasks),
  ]);
  if (leased && reserved) return { type: "handed", leased, taskId };
  if (!leased) {
    if (reserved) await releaseTask(session.sessionId, taskId, record.startedAt);
    return { type: "moved" };
  }
  const queued = await takeBack(leased, taskId, now);
  return queued ? { type: "queued", queued } : { type: "moved" };
}

/**
 * `building → queued` under the lease just taken, with the history's entry of the hand-over
 * replaced (no attempt was made); where the history was cut meanwhile, appended as any move.
 */
async function takeBack(leased: DerivationItem, taskId: string, now: Date): Promise<DerivationItem | undefined> {
  const move: Move = {
    from: ["building"],
    to: "queued",
    set: { queuedAt: leased.queuedAt },
    remove: ["lease"],
    condition: leaseIs(taskId),
  };
  const length = leased.history?.length ?? 0;
  return (
    (length > 0 ? await moveDerivation(leased.drvPath, { ...move, replacesLastOf: length }, now) : undefined) ??
    (await moveDerivation(leased.drvPath, { ...move, note: { ended: "lost" } }, now))
  );
}
