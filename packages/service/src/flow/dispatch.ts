/**
 * The dispatch runner (docs/architecture.md, "ready → dispatched"): it carries out what core's
 * dispatch plan decides — which queues to receive from, what becomes of each message, which
 * idle agents to wake. Each task is leased to the session with conditional writes before it
 * is sent, so a message received twice, or by two agents, starts one task.
 */
import type { Message } from "@aws-sdk/client-sqs";
import {
  afterStart,
  mayStart,
  nextQueue,
  placeBuild,
  planDispatch,
  planWake,
  receiveCount,
  startDispatch,
  takersOf,
  type QueueSource,
  type StartOutcome,
} from "@nimbus/core";
import { sendToAgent } from "../storage/agent-socket.ts";
import type { SessionFields } from "../storage/items.ts";
import { deleteMessage, MalformedMessageError, putMessageBack, receiveMessages } from "../storage/queue-messages.ts";
import { getSessionLoad, listSessionLoads, releaseTask, reserveTask } from "../storage/sessions.ts";
import { setEarlyWake, WorkNotes } from "./new-work.ts";
import { taskKind, taskSources } from "./tasks/registry.ts";

/**
 * Fills a session's free slots from the queues core `planDispatch` names, in its order.
 * Returns the number of tasks given. `sources` may be passed when several sessions are filled
 * at once (one read of the queues for all).
 */
export async function dispatchTo(session: SessionFields | undefined, sources?: readonly QueueSource[], work?: WorkNotes): Promise<number> {
  const connectionId = session?.connectionId;
  if (!session || !connectionId) return 0;
  let state = startDispatch(session);
  if (state.free === 0) return 0;
  const plan = planDispatch(session, sources ?? (await taskSources()));
  // Read once, and only if a task turns out not to be for this agent.
  let sessions: Promise<SessionFields[]> | undefined;
  const everyone = () => (sessions ??= listSessionLoads());
  for (const source of plan) {
    const kind = taskKind(source.kind);
    const url = await kind.queueUrl(source.queue);
    // Messages for other agents stay in flight until this queue is done, so the ones behind them are reached.
    const later: Message[] = [];
    const takers = new Set<string>();
    state = nextQueue(state);
    while (receiveCount(state) > 0) {
      const messages = await receiveMessages(url, receiveCount(state), () => kind.forgetQueue(source.queue));
      if (messages.length === 0) break;
      for (const message of messages) {
        const outcome: StartOutcome = mayStart(state)
          ? await start(session, connectionId, source.kind, message, everyone, (ids) => ids.forEach((id) => takers.add(id)))
          : "full";
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
  everyone: () => Promise<SessionFields[]>,
  leftFor: (sessionIds: string[]) => void,
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
  if (claim.needs) {
    const place = placeBuild(session, claim.needs, await everyone());
    if (place === "elsewhere") leftFor(takersOf(session, claim.needs, await everyone()));
    if (place !== "here") return place === "elsewhere" ? "elsewhere" : "nowhere";
  }
  if (!(await reserveTask(session.sessionId, claim.taskId, claim.record, session.agent.concurrentTasks))) return "full";
  const task = await claim.lease(session, now);
  if (!task) {
    await releaseTask(session.sessionId, claim.taskId);
    return "stale";
  }
  const sent = (await sendToAgent(connectionId, task)) || (await sendToReconnected(session.sessionId, connectionId, task));
  await claim.afterLease?.();
  return sent ? "sent" : "undelivered";
}

/**
 * A task sent to a connection that is gone may have missed the agent by a moment: if its hello
 * on a new connection came after `session` was read, that hello could not list this task (it
 * was not yet reserved), so no reconnect would bring it again. The session read afresh names
 * the new connection. Otherwise the task waits for the agent's next hello, which re-sends it.
 */
async function sendToReconnected(sessionId: string, triedConnectionId: string, task: Parameters<typeof sendToAgent>[1]): Promise<boolean> {
  const now = (await getSessionLoad(sessionId))?.connectionId;
  return now !== undefined && now !== triedConnectionId && (await sendToAgent(now, task));
}

/**
 * Gives the work an invocation queued to idle agents that can take it at once, instead of
 * waiting for them to ask (core `planWake` chooses them): every handler that may queue work
 * calls this before it answers. It first waits for the wakes started early (`work.wakeSoon`).
 */
export async function wakeIdleAgents(work: WorkNotes): Promise<void> {
  await work.wakesDone();
  if (work.queueKeys.size === 0 && !work.evaluations) return;
  const idle = planWake(await listSessionLoads(), work);
  if (idle.length === 0) return;
  const sources = await taskSources();
  const left = new WorkNotes();
  await Promise.all(idle.map((session) => dispatchTo(session, sources, left)));
  await offerLeftWork(left, sources);
}

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
  const takers = planWake((await listSessionLoads()).filter((session) => left.leftFor.has(session.sessionId)), left);
  for (const session of takers) await dispatchTo(session, sources);
}
