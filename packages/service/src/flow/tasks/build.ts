/**
 * The build task: an agent realises one derivation whose inputs are built (docs/protocol.md,
 * `build`). Its work waits in the build queue of its (system, features); its lease is the
 * derivation's `lease`, and only the session holding it can settle the derivation.
 */
import { taskInputs, type BuildNeeds, type TaskStanding } from "@nimbus/core";
import {
  BUILTIN_CACHE_NAME,
  BuildTask,
  cacheProblem,
  cacheSource,
  LOG_BATCHES_KEPT,
  MAX_LOG_BATCHES,
  storeSource,
  type BuildLog,
  type BuildPushing,
  type BuildResult,
  type CacheReport,
  type LogBatch,
  type ServiceMessage,
} from "@nimbus/protocol";
import { buildQueueUrl, forgetBuildQueue, listBuildQueues } from "../../storage/build-queues.ts";
import { deleteLogChunk, putLogChunk } from "../../storage/build-logs.ts";
import { getDerivation, leaseIs, moveDerivation } from "../../storage/derivations.ts";
import type { DerivationItem } from "../../storage/items.ts";
import { logChunk } from "../../storage/keys.ts";
import { BuildMessage, parseMessageBody, type BuildStartBody } from "../../storage/queue-messages.ts";
import type { Condition } from "../../storage/table.ts";
import { sessionCopy } from "../../storage/session-copies.ts";
import { noteCacheReports, releaseTaskReturning } from "../../storage/sessions.ts";
import { addTotals, publishWithResult } from "../cache-publish.ts";
import { FreedSlot } from "../freed-slot.ts";
import { OwedAck } from "../result-acks.ts";
import { retryBuild } from "../retries.ts";
import { settle } from "../settle.ts";
import { BuildRecord, buildStart, buildTaskId, buildTaskMessage, builtInputs, needsOf } from "./build-task.ts";
import { answer, sessionGone, unknownTask, type Claim, type ReportInput, type TaskAnswer, type TaskHolder, type TaskKind } from "./task-kind.ts";

/** The derivation, if this build task's lease is the holder's. */
async function leasedTo(taskId: string, record: BuildRecord, holder: { sessionId: string }): Promise<DerivationItem | undefined> {
  const drv = await getDerivation(record.drvPath);
  return drv?.status === "building" && drv.lease?.taskId === taskId && drv.lease.sessionId === holder.sessionId ? drv : undefined;
}

const notHeld = (taskId: string) => unknownTask(taskId, "is not a build this agent holds");

/** A batch of log lines from the session holding the build: stored. */
async function buildLog({ message, held }: ReportInput<BuildLog, BuildRecord>): Promise<TaskAnswer> {
  if (!held) return answer(false, notHeld(message.taskId));
  await storeLogBatch(held, message);
  return answer(false);
}

/**
 * Stores a batch of log lines — a `build-log`'s, or the last one a `build-result` carries —
 * (idempotent: the chunk number is the attempt and the batch number) and drops the one that
 * falls out of the kept tail (the last LOG_BATCHES_KEPT batches), so a build's stored log is
 * bounded however long it runs.
 */
async function storeLogBatch(held: BuildRecord, batch: LogBatch): Promise<void> {
  await putLogChunk({ drvPath: held.drvPath, chunk: logChunk(held.attempt, batch.seq), lines: batch.lines });
  if (batch.seq >= LOG_BATCHES_KEPT) await deleteLogChunk(held.drvPath, logChunk(held.attempt, batch.seq - LOG_BATCHES_KEPT));
}

/**
 * The slots `build-pushing` frames handled here are freeing, by task, until written: a result that
 * comes meanwhile (its uploads can be done before that frame's dispatch) waits for the write
 * rather than race the dispatch for the slot. Frames handled elsewhere race as before: every
 * write is conditional.
 */
const pushingSlots = new Map<string, FreedSlot>();
/** How old a copy showing the build `pushing` may be: the frames' trust (edges/agent-messages.ts `SESSION_TRUST_MS`). */
const PUSHING_COPY_MS = 30_000;

/**
 * Nix built it and the agent pushes its outputs: its slot is free for the next task, while the
 * lease stays until the result (its dependents and its job wait for the pushes, and an agent
 * lost meanwhile hands the build back as it would any other). Once only: a repeat changes nothing.
 * The build goes `pushing` in the write that hands its slot to the first task the follow-up's
 * dispatch gives the agent, or that gives the slot back (flow/freed-slot.ts): whether that write
 * was refused decides the answer, sent after it.
 */
async function buildPushing(input: ReportInput<BuildPushing, BuildRecord>): Promise<TaskAnswer> {
  const { session, message, held, work, reread } = input;
  if (!held) return answer(false, notHeld(message.taskId));
  if (held.drvPath !== message.drvPath) return answer(false, unknownTask(message.taskId, `builds ${held.drvPath}, not ${message.drvPath}`));
  if (held.pushing) return answer(false);
  // Conditional on the session speaking on this connection and holding the task, its slot counted: what a read would check.
  const slot = FreedSlot.whilePushing(session, message.taskId, session.connectionId ?? "");
  pushingSlots.set(message.taskId, slot);
  void slot.written.then(() => pushingSlots.get(message.taskId) === slot && pushingSlots.delete(message.taskId));
  work.offerFirstTo(Promise.resolve(slot.load), slot);
  const later = async (): Promise<ServiceMessage[]> => {
    if ((await slot.recorded()) || !reread) return [];
    // Refused on a copy of the session, which may be stale: answered as a fresh read would have it.
    const fresh = await reread();
    if (!fresh) return [sessionGone];
    return fresh.held?.drvPath === message.drvPath ? [] : [notHeld(message.taskId)];
  };
  return { ...answer(true), later };
}

/**
 * Records how a build ended — only from the session holding its lease, only once — moves the
 * graph on, frees the slot and acknowledges, so the agent stops re-sending it: on the first build
 * the invocation sends the agent, else with a `result-ack` once its dispatches are done.
 */
async function buildResult(input: ReportInput<BuildResult, BuildRecord>): Promise<TaskAnswer> {
  const { message, held, now } = input;
  if (!held) return answer(true, notHeld(message.taskId));
  if (held.drvPath !== message.drvPath) return answer(true, unknownTask(message.taskId, `builds ${held.drvPath}, not ${message.drvPath}`));
  // Outputs it carries to the built-in cache are published first: in the cache before any dependent is dispatched. The
  // log's last batch, when it rides on the result, is stored beside them: before the build shows settled, as its own frame would be.
  const totals = { paths: 0, fileBytes: 0, narBytes: 0 };
  const [reports] = await Promise.all([publishWithResult(message, now, totals), message.log && storeLogBatch(held, message.log)]);
  await noteRefusedPublication(message, held, reports);
  // The cache's totals beside the settle, off its way: nothing waits for them, and nothing decides on them (docs/cache.md).
  const counted = addTotals(totals).catch((error: unknown) => console.error(`cache totals not added: ${error instanceof Error ? error.message : String(error)}`));
  try {
    // A `build-pushing` this handler applied (or is applying) while the outputs were published freed the slot: the frame's copy predates it.
    await pushingSlots.get(message.taskId)?.written;
    const meanwhile = held.pushing ? undefined : pushingNow(input.session, message);
    return await settleResult(meanwhile ? { ...input, ...meanwhile } : input, meanwhile?.held ?? held, reports);
  } finally {
    await counted;
  }
}

/**
 * The session as this handler's latest copy has it, when that shows the build `pushing` where the
 * frame's copy did not (a `build-pushing` whose write this handler saw return since the frame
 * began — sent before it, perhaps): its slot was given back then, and the result only gives the
 * task up. A build goes `pushing` once and stays so until its task ends, so such a copy is the
 * later one. It decides nothing: every write stays conditional, and a refused one reads afresh.
 */
function pushingNow(session: TaskHolder, message: BuildResult): { session: TaskHolder; held: BuildRecord } | undefined {
  const copy = sessionCopy(session.sessionId, new Date(), PUSHING_COPY_MS);
  const held = BuildRecord.safeParse(copy?.tasks[message.taskId]);
  if (!copy || copy.connectionId !== session.connectionId || !held.success || !held.data.pushing || held.data.drvPath !== message.drvPath) return undefined;
  return { session: copy, held: held.data };
}

/** The result applied: settled (or retried) under the lease, the slot freed, the ack owed. */
async function settleResult(input: ReportInput<BuildResult, BuildRecord>, heldOnCopy: BuildRecord, reports: readonly CacheReport[]): Promise<TaskAnswer> {
  const { message, now, work } = input;
  let { session } = input;
  let held: BuildRecord | undefined = heldOnCopy;
  const builtBy = { hostname: session.agent.hostname, sessionId: session.sessionId, connectionId: session.connectionId ?? "", labels: session.agent.labels };
  // The lease is this task's and this session's: the derivation's own item decides, not the frame's copy of the session
  // (edges/agent-messages.ts); a task id another session holds under the same attempt (two dispatches that received one
  // message) is not this one's to settle.
  const settleAs = (to: "succeeded" | "failed", set: Record<string, unknown>) =>
    moveDerivation(message.drvPath, { from: ["building"], to, set, remove: ["lease"], condition: leaseIs(message.taskId, session.sessionId) }, now);
  let moved: DerivationItem | undefined;
  let retried = false;
  if (message.status === "succeeded") {
    // Where its outputs are now: the builder's store, and every cache it pushed them to.
    const sources = [
      ...(session.agent.storeId ? [storeSource(session.agent.storeId)] : []),
      ...reports.filter((r) => r.status === "pushed").map((r) => cacheSource(r.cache)),
    ];
    const problems = reports.flatMap((r) => cacheProblem(r) ?? []);
    moved = await settleAs("succeeded", {
      builtBy,
      finishedAt: now.toISOString(),
      ...(message.outputs ? { outputs: message.outputs } : {}),
      ...(sources.length > 0 ? { sources: new Set(sources) } : {}),
      ...(problems.length > 0 ? { cacheProblems: problems } : {}),
    });
  } else if (message.status === "failed") {
    const reason = `builder failed${message.exitCode === undefined ? "" : ` with exit code ${message.exitCode}`}`;
    const failure = { reason, ...(message.exitCode === undefined ? {} : { exitCode: message.exitCode }), logTail: message.logTail ?? [] };
    moved = await settleAs("failed", { builtBy, failure, finishedAt: now.toISOString() });
  } else {
    retried = await retryBuild(message.drvPath, message.taskId, `agent error: ${message.error ?? "exceptional result"}`, work, now, session.sessionId);
  }
  // A result whose settle was refused is not this task's to apply (a repeat, or its lease was handed back): refused as a
  // result from a session without the task is, also while the slot of a first copy is still being handed on.
  const refused = message.status !== "exceptional" && !moved;
  if ((refused || (message.status === "exceptional" && !retried)) && input.reread) {
    // Refused on a copy of the session, which may be stale: the slot, the ack and the answer go by a fresh read.
    const fresh = await input.reread();
    if (!fresh) return answer(false, sessionGone);
    ({ session, held } = fresh);
    if (!held || held.drvPath !== message.drvPath) return answer(true, notHeld(message.taskId));
  }
  await noteCacheReports(session, reports, now);
  // Recorded: acknowledged by the first build this invocation sends the agent, or alone after (flow/result-acks.ts).
  const ack = refused ? undefined : new OwedAck(message.taskId);
  if (held.pushing) {
    // Its slot was given back at `build-pushing`: the session only forgets the task.
    const released = releaseTaskReturning(session.sessionId, message.taskId, true);
    work.offerFirstTo(released, undefined, ack);
    await Promise.all([released, moved && settle(moved, work, now)]);
  } else {
    // The slot is free once the result is recorded, and goes to the first task this invocation gives the agent — a
    // dependent it hands over, or the builds this result queued, offered by the first wake before it asks the index
    // for idle agents — in the write that reserves it; given back only if none takes it (flow/freed-slot.ts).
    const slot = new FreedSlot(session, message.taskId);
    work.offerFirstTo(Promise.resolve(slot.load), slot, ack);
    if (moved) await settle(moved, work, now);
  }
  // A build that said `build-pushing` gave its slot back then, and that report asked for more work already.
  const more = held.pushing !== true;
  return refused ? answer(more, unknownTask(message.taskId, "holds no lease on its build (its result was applied already, or the build was handed back)")) : answer(more);
}

/**
 * A publication the result carried and the service refused is said in the build's log, as the
 * agent says a refusal of its own completion: in the attempt's last chunk, after any batch the
 * agent can send.
 */
async function noteRefusedPublication(message: BuildResult, held: BuildRecord, reports: readonly CacheReport[]): Promise<void> {
  const report = message.publish ? reports.find((r) => r.cache === BUILTIN_CACHE_NAME) : undefined;
  const problem = report && cacheProblem(report);
  if (problem) await putLogChunk({ drvPath: held.drvPath, chunk: logChunk(held.attempt, MAX_LOG_BATCHES - 1), lines: [`nimbus: ${problem}`] });
}

/**
 * A message that carries its start (storage/queue-messages.ts `BuildStartBody`): placed and
 * written from it, with nothing read. The lease checks what a read would have: the derivation
 * still queued at this message's attempt (a retry or a restart since is another task, whose
 * message is its own) and no back-off pending; it returns the item, as the read did.
 */
function claimCarried({ drvPath, attempt }: BuildMessage, start: BuildStartBody, now: Date): Claim<BuildRecord, BuildTask> {
  const condition = {
    expression: "#claimAttempt = :claimAttempt AND attribute_not_exists(#claimDue)",
    names: { "#claimAttempt": "attempt", "#claimDue": "dueAt" },
    values: { ":claimAttempt": attempt },
  };
  return leaseClaim(buildStart({ drvPath, attempt }, now), { system: start.system, requiredFeatures: start.requiredFeatures, needs: start.needs }, start, now, condition);
}

/** A message that names the derivation only (queued before messages carried starts, or whose start did not fit): read, as it always was. */
async function claimRead(drvPath: string, now: Date): Promise<Claim<BuildRecord, BuildTask> | undefined> {
  const drv = await getDerivation(drvPath);
  // A retry waiting out its back-off is not for now: the sweeper sends it again when due.
  if (!drv || drv.status !== "queued" || drv.dueAt) return undefined;
  // Its inputs are on the item, or rows a registration wrote before it could wait, let alone queue.
  const inputs = await builtInputs(drv);
  return leaseClaim(buildStart(drv, now), needsOf(drv, inputs), taskInputs(inputs), now);
}

/**
 * The claim of a build: `queued → building` under the lease (and `condition`). Its jobs' rows
 * stay `queued`: a build's start is no move of them (core `shownStatus`, docs/scale.md).
 */
function leaseClaim(
  { taskId, record, leaseFor }: ReturnType<typeof buildStart>,
  needs: BuildNeeds,
  carried: { inputs?: string[]; inputCaches?: string[] },
  now: Date,
  condition?: Condition,
): Claim<BuildRecord, BuildTask> {
  return {
    taskId,
    record,
    needs,
    async lease(holder) {
      const move = { from: ["queued"], to: "building", set: { lease: leaseFor(holder.sessionId) }, note: { agent: holder.agent.hostname }, ...(condition ? { condition } : {}) } as const;
      const leased = await moveDerivation(record.drvPath, move, now);
      return leased && buildTaskMessage(taskId, leased, carried);
    },
  };
}

/** Leased to the holder under this task id, queued for it (a dispatch may be leasing it), or gone. */
async function standing(taskId: string, record: BuildRecord, holder: TaskHolder): Promise<TaskStanding> {
  const drv = await getDerivation(record.drvPath);
  if (drv?.status === "building" && drv.lease?.taskId === taskId && drv.lease.sessionId === holder.sessionId) return "leased";
  if (drv?.status === "queued" && buildTaskId(drv.drvPath, drv.attempt) === taskId) return "pending";
  return "gone";
}

export const buildKind = {
  kind: "build",
  message: BuildTask,
  record: BuildRecord,
  // Rank 1: after evaluations; one source per build queue, kept only where the agent may build.
  sources: async () =>
    (await listBuildQueues()).map((q) => ({ kind: "build", queue: q.queueKey, rank: 1, requires: { system: q.system, requiredFeatures: q.features } })),
  queueUrl: buildQueueUrl,
  forgetQueue: (queueKey) => {
    forgetBuildQueue(queueKey);
  },
  async claim(message, now) {
    const body = parseMessageBody("a build queue", message, BuildMessage);
    return body.start ? claimCarried(body, body.start, now) : claimRead(body.drvPath, now);
  },
  holds: async (taskId, record, holder) => (await leasedTo(taskId, record, holder)) !== undefined,
  async resume(taskId, record, holder) {
    const drv = await leasedTo(taskId, record, holder);
    return drv ? buildTaskMessage(taskId, drv, taskInputs(await builtInputs(drv))) : undefined;
  },
  standing,
  // The agent, not the build, failed: a retry — of the holder's lease only (another session may lease the same attempt).
  handBack: async (taskId, record, holder, reason, work) => {
    await retryBuild(record.drvPath, taskId, reason, work, undefined, holder.sessionId);
  },
  reports: { "build-log": buildLog, "build-pushing": buildPushing, "build-result": buildResult },
} satisfies TaskKind<"build", BuildRecord, BuildTask>;
