/**
 * `$default`: every frame an agent sends. A hello attaches the agent's session; heartbeats keep
 * it; reports about tasks go to the task kind that declared them (flow/tasks/registry.ts).
 * Each frame is answered, then followed up (more work for this agent), then idle agents are
 * woken for whatever work the frame queued. A result's acknowledgement rides on the first build
 * sent to its agent meanwhile, or goes last (flow/result-acks.ts).
 */
import { decodeAgentMessage, NIMBUS_VERSION, PROTOCOL_VERSION, type AgentMessage, type ErrorCode, type Hello, type ServiceMessage } from "@nimbus/protocol";
import { timing } from "../platform/timing.ts";
import { closeAgentConnection, sendToAgent } from "../storage/agent-socket.ts";
import { getConnection, recordHello, touchConnection, updateConnectionAgent } from "../storage/connections.ts";
import { countingMoves } from "../storage/job-counts.ts";
import { setDraining, touchSession, updateSessionAgent } from "../storage/sessions.ts";
import { dispatchToReporter, dispatchToSession, wakeIdleAgents } from "../flow/dispatch.ts";
import { reportChangedJobs } from "../flow/job-reports.ts";
import { WorkNotes } from "../flow/new-work.ts";
import { ackAskingAgain, askAgainMs } from "../flow/full-classes.ts";
import { endSession } from "../flow/session-end.ts";
import { reconcileListedTasks } from "../flow/session-heartbeat.ts";
import { resumeTasks } from "../flow/session-resume.ts";
import { attachSession, getSession, recentSession, touchSessionReturning, type SessionItem } from "../flow/sessions.ts";
import { reportHandler } from "../flow/tasks/registry.ts";
import { sessionGone, type TaskReport } from "../flow/tasks/task-kind.ts";
import { secretValue } from "../platform/linked-resources.ts";
import { forgetSessionCopy } from "../storage/session-copies.ts";
import { cacheUploadResult, cacheUploadUrls } from "./agent-cache-messages.ts";

const error = (code: ErrorCode, message: string, fatal = false): ServiceMessage => ({ type: "error", code, message, fatal });

const UNKNOWN_CONNECTION = sessionGone;
const HELLO_REQUIRED = error("hello-required", "send hello before anything else");

/** The replies, what to do once they are sent, and replies only that follow-up decides (sent after it). */
type Answer = { replies: ServiceMessage[]; followUp?: () => Promise<unknown>; later?: () => Promise<ServiceMessage[]> };
const reply = (...replies: ServiceMessage[]): Answer => ({ replies });

/** A hello: attach the agent's session to this connection, welcome it, and put its tasks straight. */
async function hello(connectionId: string, message: Hello, now: Date, work: WorkNotes): Promise<Answer> {
  const connection = await getConnection(connectionId);
  if (!connection) return reply(UNKNOWN_CONNECTION);
  if (connection.helloAt) return reply(error("duplicate-hello", "this connection already said hello; nothing changed"));
  const attached = await attachSession({ credential: message.session, tokenId: connection.tokenId, connectionId, agent: message.agent, now });
  if (!attached.ok && attached.retry) return reply(error("try-again", `session ${message.session.id} not attached: ${attached.reason}; connect again`));
  if (!attached.ok) {
    return reply(error("session-refused", `session ${message.session.id} refused: ${attached.reason} — delete the agent's session.json to start a new one`, true));
  }
  const outcome = await recordHello(connectionId, message.agent, message.session.id, now);
  if (outcome === "duplicate") return reply(error("duplicate-hello", "this connection already said hello; nothing changed"));
  if (outcome === "unknown-connection") return reply(UNKNOWN_CONNECTION);
  rememberSession(connectionId, message.session.id);
  // A session speaks on one connection: an older one still open is closed (its tasks stay). Its frames there read the
  // session afresh: no copy names that connection now.
  forgetSessionCopy(message.session.id);
  if (attached.previousConnectionId) await closeAgentConnection(attached.previousConnectionId);
  const askAgain = askAgainMs();
  const welcome: ServiceMessage = {
    type: "welcome",
    protocolVersion: PROTOCOL_VERSION,
    serviceVersion: NIMBUS_VERSION,
    connectionId,
    heartbeatIntervalMs: timing().heartbeatIntervalMs,
    cache: { publicKey: secretValue("CachePublicKey") },
    // A new session was in no class's index when a wake last found its class full.
    ...(askAgain === undefined ? {} : { askAgainMs: askAgain }),
  };
  const resume = await resumeTasks(attached.session, message.tasksInProgress, now);
  return { replies: [welcome, ...resume], followUp: () => dispatchToSession(message.session.id, work) };
}

/** What to answer one valid message with, and what to do after answering. */
async function handle(connectionId: string, message: AgentMessage, now: Date, work: WorkNotes): Promise<Answer> {
  if (message.type === "hello") return hello(connectionId, message, now, work);
  if (message.type === "heartbeat") {
    const touched = await touchConnection(connectionId, now);
    if (!touched.ok) return reply(touched.reason === "hello-required" ? HELLO_REQUIRED : UNKNOWN_CONNECTION);
    rememberSession(connectionId, touched.sessionId);
    const ack: ServiceMessage = { type: "heartbeat-ack", sentAt: now.toISOString() };
    if (!message.tasksInProgress) {
      await touchSession(touched.sessionId, now);
      return reply(ack);
    }
    // One write both refreshes the session and reads what it holds, to hold it against the agent's list.
    const session = await touchSessionReturning(touched.sessionId, now);
    if (!session) return reply(ack);
    const { messages, freed } = await reconcileListedTasks(session, message.tasksInProgress, now);
    return { replies: [ack, ...messages], ...(freed ? { followUp: () => dispatchToSession(touched.sessionId, work) } : {}) };
  }
  // Everything else speaks for the agent's session.
  let sessionId = sessionOfConnection.get(connectionId);
  if (!sessionId) {
    const connection = await getConnection(connectionId);
    if (!connection) return reply(UNKNOWN_CONNECTION);
    if (!connection.sessionId) return reply(HELLO_REQUIRED);
    sessionId = connection.sessionId;
    rememberSession(connectionId, sessionId);
  }
  // The session decides: one whose agent left this connection (gone, or replaced by a new hello) no longer names it.
  const trusted = trustedCopy(connectionId, sessionId, message, now);
  const session = trusted ?? (await getSession(sessionId, now));
  if (!session || session.connectionId !== connectionId) {
    if (!session) forgetSessionCopy(sessionId);
    return reply(UNKNOWN_CONNECTION);
  }
  // A report that went on the copy reads afresh when a write the copy led to was refused: it answers as a fresh read would.
  const reread = trusted
    ? async () => {
        const fresh = await getSession(sessionId, now);
        return fresh?.connectionId === connectionId ? fresh : undefined;
      }
    : undefined;
  return sessionMessage(session, message, now, work, reread);
}

/**
 * How long a frame may go on this warm handler's copy of its session — the last read of it, or
 * the item a write to it returned (storage/session-copies.ts) — rather than read it afresh
 * (docs/protocol.md, "Connection bookkeeping"). Frames that change no task (uploads to the
 * built-in cache, a held build's log) are refused at most this long after the session ended;
 * a held build's `build-pushing` and `build-result` are applied only by conditional writes on
 * what they change (the slot, the derivation's lease), and read afresh when one is refused.
 * Every other frame reads the session afresh.
 */
export const SESSION_TRUST_MS = 30_000;

/**
 * The copy a frame may go on: recent, of the session on this connection, and for a report
 * about a task, showing that task held (a build's, for its pushing and result).
 */
function trustedCopy(connectionId: string, sessionId: string, message: AgentMessage, now: Date): SessionItem | undefined {
  const reportsBuild = message.type === "build-log" || message.type === "build-pushing" || message.type === "build-result";
  if (!reportsBuild && message.type !== "cache-upload-request" && message.type !== "cache-upload-complete") return undefined;
  const copy = recentSession(sessionId, now, SESSION_TRUST_MS);
  if (copy?.connectionId !== connectionId) return undefined;
  return !reportsBuild || copy.tasks[message.taskId]?.kind === "build" ? copy : undefined;
}

/**
 * The session each connection said hello for, as this warm handler saw it: a connection's
 * session never changes after its hello (storage/connections.ts `recordHello` writes it once),
 * so a frame need not read the connection again. Whether the session still speaks on the
 * connection is read from the session itself on every frame.
 */
const sessionOfConnection = new Map<string, string>();
const REMEMBERED_CONNECTIONS = 10_000;

function rememberSession(connectionId: string, sessionId: string): void {
  // The oldest goes first once the map is full: a handler outlives many connections.
  if (sessionOfConnection.size >= REMEMBERED_CONNECTIONS) sessionOfConnection.delete(sessionOfConnection.keys().next().value!);
  sessionOfConnection.set(connectionId, sessionId);
}

async function sessionMessage(
  session: SessionItem,
  message: Exclude<AgentMessage, { type: "hello" | "heartbeat" }>,
  now: Date,
  work: WorkNotes,
  reread?: () => Promise<SessionItem | undefined>,
): Promise<Answer> {
  // More work for the session once the early wakes are done — none if one of them gave it work after its report freed its
  // slot; else as that release left its load (no read) less what hand-overs took, or read afresh.
  const more = async () => {
    await work.wakesDone();
    if (work.reporterDispatched) return 0;
    const reporter = work.takeReporter();
    return (reporter && (await dispatchToReporter(reporter, work))) ?? dispatchToSession(session.sessionId, work);
  };
  switch (message.type) {
    case "request-work":
      return { replies: [], followUp: more };
    case "pause":
      forgetSessionCopy(session.sessionId);
      await setDraining(session.sessionId);
      return reply();
    case "agent-info":
      // Its caches changed (binary-caches.json reloaded): dispatch and the agent list use the new info.
      forgetSessionCopy(session.sessionId);
      if (!(await updateSessionAgent(session.sessionId, session.connectionId!, message.agent))) return reply(UNKNOWN_CONNECTION);
      await updateConnectionAgent(session.connectionId!, message.agent);
      return { replies: [], followUp: more };
    case "goodbye":
      await endSession(session.sessionId, "its agent shut down", work);
      return reply();
    case "cache-upload-request":
      return reply(await cacheUploadUrls(message, now));
    case "cache-upload-complete":
      return reply(await cacheUploadResult(message, now));
    default:
      return report(session, message, now, work, more, reread);
  }
}

/** A report about a task goes to the kind that declared it, with the session's record of the task if it is of that kind. */
async function report(
  session: SessionItem,
  message: TaskReport,
  now: Date,
  work: WorkNotes,
  more: () => Promise<unknown>,
  reread?: () => Promise<SessionItem | undefined>,
): Promise<Answer> {
  const route = reportHandler(message.type);
  if (!route) throw new Error(`no task kind handles ${message.type} reports`);
  const heldBy = (s: SessionItem) => {
    const record = s.tasks[message.taskId];
    return record?.kind === route.kind ? record : undefined;
  };
  const fresh = reread
    ? async () => {
        const s = await reread();
        return s && { session: s, held: heldBy(s) };
      }
    : undefined;
  const answer = await route.handle({ session, message, held: heldBy(session), now, work, ...(fresh ? { reread: fresh } : {}) });
  return { replies: answer.replies, ...(answer.more ? { followUp: more } : {}), ...(answer.later ? { later: answer.later } : {}) };
}

/**
 * Handles one frame from an agent: answer it, end the connection after a fatal error, follow
 * up, then wake idle agents for the work it queued (even when the answer could not be given).
 */
export async function handleAgentFrame(connectionId: string, body: string | undefined, now = new Date()): Promise<void> {
  // The job counts the frame's moves change are written once per job, after all of it.
  const work = new WorkNotes();
  // A settle's job check, too: once the frame's other moves are made, so one count write per job carries them all.
  work.deferJobChecks = true;
  await countingMoves(async () => {
    // A recorded result's ack that no build carried goes alone, once no build can carry it: after the wake that
    // takes the reporter, or when the invocation fails after answering (flow/result-acks.ts).
    let answered = false;
    const ackAlone = async () => {
      const ack = answered ? work.ackNotCarried() : undefined;
      // No build took the slot its result freed: the agent asks again, should a wake have taken its class for full.
      if (ack) await sendToAgent(connectionId, ackAskingAgain(ack, await work.reporterLoad()));
    };
    try {
      const decoded = decodeAgentMessage(body);
      const answer: Answer = decoded.ok ? await handle(connectionId, decoded.message, now, work) : reply(decoded.error);
      // An evaluation's or effect's result-ack: its slot is free, unless a follow-up dispatch fills it.
      answered = await deliver(connectionId, answer.replies.map((r) => (r.type === "result-ack" ? ackAskingAgain(r, undefined) : r)));
      if (answered) await answer.followUp?.();
      if (answered && answer.later) await deliver(connectionId, await answer.later());
      await wakeIdleAgents(work);
      await ackAlone();
      // A job that ends may start its effects: agents are woken for them.
      if (await work.runJobChecks()) await wakeIdleAgents(work);
    } finally {
      // The slot a result freed, if no task took it and no dispatch gave it back (flow/freed-slot.ts).
      await Promise.all([ackAlone(), work.releaseReporterSlot()]);
    }
  });
  // Reported once the counts are written, so the report reads them as they are.
  await reportChangedJobs(work, now);
}

/** Sends the replies in order; false when the connection is gone or was ended by a fatal error. */
async function deliver(connectionId: string, replies: ServiceMessage[]): Promise<boolean> {
  for (const message of replies) {
    if (!(await sendToAgent(connectionId, message))) return false;
    if (message.type === "error" && (message.fatal || message.code === "unknown-connection" || message.code === "try-again")) {
      await closeAgentConnection(connectionId);
      return false;
    }
  }
  return true;
}
