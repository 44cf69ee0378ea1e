/**
 * The dispatch runner (docs/architecture.md, "ready → dispatched"): it carries out what core's
 * dispatch plan decides — which queues to receive from, what becomes of each message, which
 * idle agents to wake. Each task is leased to the session with conditional writes before it
 * is sent, so a message received twice, or by two agents, starts one task.
 */
import type { Message } from "@aws-sdk/client-sqs";
import {
  afterStart,
  classesServing,
  classesToWake,
  MAX_WOKEN,
  mayStart,
  nextQueue,
  placeBuild,
  planDispatch,
  planWake,
  queueKeyOf,
  receiveCount,
  shuffled,
  startDispatch,
  takersOf,
  type BuildNeeds,
  type NewWork,
  type QueueSource,
  type StartOutcome,
} from "@nimbus/core";
import { listAgentClasses } from "../storage/agent-classes.ts";
import type { SessionFields } from "../storage/items.ts";
import { deleteMessage, MalformedMessageError, putMessageBack, receiveMessages } from "../storage/queue-messages.ts";
import { getSessionLoad, getSessionLoads, releaseTask, reserveTask, sessionsOf } from "../storage/sessions.ts";
import { idleSessionsOfOpen } from "./full-classes.ts";
import { reporterLoad, setEarlyWake, WorkNotes, type Reporter } from "./new-work.ts";
import { forgetEmpty, noteReceived, seemsEmpty } from "./rare-queues.ts";
import { sendTask } from "./task-delivery.ts";
import { taskKind, taskSources } from "./tasks/registry.ts";

/** A dispatch to the reporting agent: the slot its result freed goes to the first task, its result's ack rides on the first build. */
type ToReporter = Pick<Reporter, "slot" | "ack">;

/**
 * Fills a session's free slots from the queues core `planDispatch` names, in its order.
 * Returns the number of tasks given. `sources` may be passed when several sessions are filled
 * at once (one read of the queues for all).
 */
export async function dispatchTo(
  session: SessionFields | undefined,
  sources?: readonly QueueSource[],
  work?: WorkNotes,
  given?: Map<string, number>,
  reporter?: ToReporter,
): Promise<number> {
  const connectionId = session?.connectionId;
  if (!session || !connectionId) return 0;
  let state = startDispatch(session);
  if (state.free === 0) return 0;
  const plan = planDispatch(session, sources ?? (await taskSources())).filter((source) => !seemsEmpty(source));
  // Read once per (system, features), and only if a build turns out not to be for this agent.
  const read = new Map<string, Promise<SessionFields[]>>();
  const couldTake = (needs: BuildNeeds, fresh = false) => {
    const key = `${queueKeyOf(needs.system, needs.requiredFeatures)}${fresh ? "#fresh" : ""}`;
    if (!read.has(key)) read.set(key, sessionsThatCouldTake(needs, fresh));
    return read.get(key)!;
  };
  for (const source of plan) {
    const kind = taskKind(source.kind);
    const url = await kind.queueUrl(source.queue);
    // Messages for other agents stay in flight until this queue is done, so the ones behind them are reached.
    const later: Message[] = [];
    const takers = new Set<string>();
    state = nextQueue(state);
    let first = true;
    while (receiveCount(state) > 0) {
      const receive = () => receiveMessages(url, receiveCount(state), () => kind.forgetQueue(source.queue));
      const messages = source.rare && first ? await receiveRare(source, receive) : await receive();
      // A later receive that finds a rare queue empty says as much as a first one.
      if (source.rare && !first) noteReceived(source, messages.length);
      first = false;
      if (messages.length === 0) break;
      for (const message of messages) {
        const outcome: StartOutcome = mayStart(state)
          ? await start(session, connectionId, source.kind, message, couldTake, (ids) => ids.forEach((id) => takers.add(id)), reporter)
          : "full";
        if (outcome === "sent" || outcome === "undelivered") given?.set(source.queue, (given.get(source.queue) ?? 0) + 1);
        if (outcome === "full") work?.noteRefused();
        const next = afterStart(state, outcome);
        state = next.state;
        if (next.message === "put-back") await putMessageBack(url, message);
        else if (next.message === "put-back-later") later.push(message);
        else await deleteMessage(url, message);
      }
    }
    for (const message of later) await putMessageBack(url, message);
    // The agents that can take them: wake them (if idle) rather than wait for them to ask.
    if (later.length > 0 && source.requires) work?.addLeftFor(source.queue, takers);
    if (state.stop) break;
  }
  return state.given;
}

/**
 * Fills the free slots of the agent whose report this invocation handles, as its report left
 * them (no read), the slot its result freed first handed on to the first task given
 * (flow/freed-slot.ts). Should nothing take that slot, it is given back, and the queues are
 * looked at once more: while this dispatch looked, the agent seemed busy to other handlers'
 * wakes, so work they queued meanwhile woke no one for it. Undefined when the report left no load.
 */
export async function dispatchToReporter(reporter: Reporter, work: WorkNotes, sources?: readonly QueueSource[]): Promise<number | undefined> {
  const load = await reporterLoad(reporter);
  if (!load) return undefined;
  reporter.dispatched = true;
  const given = await dispatchTo(load, sources, work, work.givenToReporter, reporter);
  if (!reporter.slot?.held) return given;
  const released = await reporter.slot.release();
  // The slot given back, a task takes a slot as any other (FreedSlot.reserve); a build may still carry the ack.
  return given + (released ? await dispatchTo(released, sources, work, work.givenToReporter, reporter) : 0);
}

/** Fills the free slots of a session by id, read afresh (after a message that may have freed one). */
export async function dispatchToSession(sessionId: string, work?: WorkNotes): Promise<number> {
  return dispatchTo(await getSessionLoad(sessionId), undefined, work);
}

/** Claims, reserves a slot for, leases and sends one received task; tells `leftFor` who can take a build it leaves. */
async function start(
  session: SessionFields,
  connectionId: string,
  kindName: string,
  message: Message,
  couldTake: (needs: BuildNeeds, fresh?: boolean) => Promise<SessionFields[]>,
  leftFor: (sessionIds: string[]) => void,
  reporter?: ToReporter,
): Promise<StartOutcome> {
  const kind = taskKind(kindName);
  const now = new Date();
  let claim;
  try {
    claim = await kind.claim(message, now);
  } catch (error) {
    // A body nothing can be done with would come back forever and hold up its FIFO group: drop it.
    if (!(error instanceof MalformedMessageError)) throw error;
    console.error(error.message);
    return "stale";
  }
  if (!claim) return "stale";
  // A build goes only where its inputs can be had (core obtaining.ts); left for another agent, or to wait.
  // Only the sessions of the classes that can build it are read, and only when this agent cannot take it.
  if (claim.needs && placeBuild(session, claim.needs, []) !== "here") {
    let sessions = await couldTake(claim.needs);
    // Before deciding no agent can take it (its message is then deleted): the classes read again, not from this handler's copy.
    if (placeBuild(session, claim.needs, sessions) === "nowhere") sessions = await couldTake(claim.needs, true);
    if (placeBuild(session, claim.needs, sessions) === "nowhere") return "nowhere";
    leftFor(takersOf(session, claim.needs, sessions));
    return "elsewhere";
  }
  const limit = session.agent.concurrentTasks;
  const slot = reporter?.slot;
  if (!(await (slot ? slot.reserve(claim.taskId, claim.record, limit) : reserveTask(session.sessionId, claim.taskId, claim.record, limit)))) return "full";
  const task = await claim.lease(session, now);
  if (!task) {
    await releaseTask(session.sessionId, claim.taskId);
    return "stale";
  }
  const sent = await sendTask(session.sessionId, connectionId, reporter?.ack?.carry(task) ?? task);
  return sent ? "sent" : "undelivered";
}

/**
 * Gives the work an invocation queued to idle agents that can take it at once, instead of
 * waiting for them to ask (core `planWake` chooses them): every handler that may queue work
 * calls this before it answers. It first waits for the wakes started early (`work.wakeSoon`).
 */
export async function wakeIdleAgents(work: WorkNotes): Promise<void> {
  await work.wakesDone();
  if (work.queueKeys.size === 0 && !work.evaluations) return;
  // This invocation queued an evaluation or an effect (or the sweeper found one waiting): whatever was believed empty may not be.
  if (work.evaluations) forgetEmpty();
  // The agent whose report queued the builds is offered them first; what it takes wakes no one (docs/reliability.md).
  const reporter = work.takeReporter();
  if (reporter) await dispatchToReporter(reporter, work, await taskSources());
  if (work.coveredByReporter()) return;
  // One idle agent per task queued at most: more would ask the queue for messages another already took.
  const taken = [...work.givenToReporter.values()].reduce((sum, n) => sum + n, 0);
  const limit = Math.max(1, Math.min(MAX_WOKEN, work.tasks - taken));
  let idle = planWake(await idleSessionsFor(work, limit), work, limit);
  if (idle.length === 0) return;
  const sources = await taskSources();
  const tried = new Set<string>();
  for (let round = 1; idle.length > 0; round++) {
    for (const session of idle) tried.add(session.sessionId);
    const left = new WorkNotes();
    await Promise.all(idle.map((session) => dispatchTo(session, sources, left)));
    await offerLeftWork(left, sources);
    // A woken agent whose slot went meanwhile (another dispatch filled it, it drains or left)
    // put its task back: other idle agents are woken for it, or it would wait for one to ask.
    if (left.refused === 0 || round === WAKE_ROUNDS) return;
    const others = (await idleSessionsFor(work, limit + tried.size)).filter((session) => !tried.has(session.sessionId));
    idle = planWake(others, work, left.refused);
  }
}

/** Rounds of one wake at most: each wakes others for the tasks the agents of the round before could not take. */
const WAKE_ROUNDS = 3;

// Work queued mid-invocation is woken for at once (flow/new-work.ts `wakeSoon`).
setEarlyWake(wakeIdleAgents);

/**
 * Builds an agent received and left for others were in flight while those looked (in this
 * invocation or another): once they are back in their queue, they are offered to the idle
 * agents they were left for, one after the other, so each sees what the one before put back.
 * Only to those: an agent that cannot take them would hold them in flight again while the one
 * that can looks, and leave them for the sweeper's re-send. A taker busy now asks when a slot
 * frees; should that look find them held by another agent, that agent offers them again.
 */
async function offerLeftWork(left: WorkNotes, sources: readonly QueueSource[]): Promise<void> {
  if (left.leftFor.size === 0) return;
  // Read by id: the takers were named (core takersOf); a few of them are enough to choose from.
  const takers = planWake(await getSessionLoads(shuffled([...left.leftFor]).slice(0, MAX_TAKERS_READ)), left);
  for (const session of takers) await dispatchTo(session, sources);
}

/** Sessions a left build is offered to are chosen from at most this many of its takers. */
const MAX_TAKERS_READ = 100;

/**
 * Sessions with a free slot that could take the work, from the byCapability index: the classes
 * serving its build queues; for an evaluation or an effect (any agent), classes in a random
 * order, a few at a time, until a wake's worth of idle agents is found. A class a recent look
 * found full is not asked (flow/full-classes.ts).
 */
async function idleSessionsFor(work: NewWork, limit: number): Promise<SessionFields[]> {
  const all = await listAgentClasses();
  const serving = classesToWake(all, { queueKeys: work.queueKeys, evaluations: false });
  if (!work.evaluations) return idleSessionsOfOpen(serving, limit);
  // Those serving its build queues first, if it queued builds too; then waves of 1, 2, 4… classes.
  const order = [...shuffled(serving), ...shuffled(all.filter((c) => !serving.includes(c)))];
  const found: SessionFields[] = [];
  for (let i = 0, wave = 1; i < order.length && found.length < limit; i += wave, wave *= 2) {
    found.push(...(await idleSessionsOfOpen(order.slice(i, i + wave), limit - found.length)));
  }
  return found;
}

/** Every session, connected or away, not draining, of the classes that can build it under Nix's rule (`fresh`: read so as to miss none). */
async function sessionsThatCouldTake(build: BuildNeeds, fresh: boolean): Promise<SessionFields[]> {
  return sessionsOf(classesServing(await listAgentClasses({ fresh }), build), { settled: fresh });
}

/** The last first-receive from each rare queue in this handler: the next one waits for it. */
const rareTurns = new Map<string, Promise<void>>();

/**
 * A dispatch's first receive from a rare queue, one at a time per handler: the agents a wake
 * fills at once would otherwise all ask an empty queue together. Each waits for the one before
 * it, and asks nothing if that one found the queue empty.
 */
async function receiveRare(source: QueueSource, receive: () => Promise<Message[]>): Promise<Message[]> {
  const before = rareTurns.get(source.queue) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  rareTurns.set(source.queue, mine);
  try {
    await before;
    if (seemsEmpty(source)) return [];
    const messages = await receive();
    noteReceived(source, messages.length);
    return messages;
  } finally {
    done();
    if (rareTurns.get(source.queue) === mine) rareTurns.delete(source.queue);
  }
}
