import {
  decodeAgentMessage,
  NIMBUS_VERSION,
  PROTOCOL_VERSION,
  type AgentMessage,
  type ErrorCode,
  type Hello,
  type ServiceMessage,
} from "@nimbus/protocol";
import { closeAgentConnection, sendToAgent } from "./agent-channel.ts";
import { handleBuildLog, handleBuildResult } from "./builds.ts";
import { getConnection, recordHello, touchConnection } from "./connections.ts";
import { dispatchTo, wakeIdleAgents } from "./dispatch.ts";
import { handleEvaluationDone, handleEvaluationEvents } from "./evaluation.ts";
import { resumeTasks } from "./session-resume.ts";
import { attachSession, getSession, setDraining, touchSession, type SessionItem } from "./sessions.ts";
import { endSession } from "./task-recovery.ts";
import { timing } from "./timing.ts";

const error = (code: ErrorCode, message: string, fatal = false): ServiceMessage => ({ type: "error", code, message, fatal });

const UNKNOWN_CONNECTION = error(
  "unknown-connection",
  "this connection is not registered (it may have been cleaned up): reconnect",
);
const HELLO_REQUIRED = error("hello-required", "send hello before anything else");

type Answer = { replies: ServiceMessage[]; followUp?: () => Promise<unknown> };
const reply = (...replies: ServiceMessage[]): Answer => ({ replies });

/** A hello: attach the agent's session to this connection, welcome it, and put its tasks straight. */
async function hello(connectionId: string, message: Hello, now: Date): Promise<Answer> {
  const connection = await getConnection(connectionId);
  if (!connection) return reply(UNKNOWN_CONNECTION);
  if (connection.helloAt) return reply(error("duplicate-hello", "this connection already said hello; nothing changed"));
  const attached = await attachSession({
    credential: message.session,
    tokenId: connection.tokenId,
    connectionId,
    agent: message.agent,
    now,
  });
  if (!attached.ok) {
    return reply(error("session-refused", `session ${message.session.id} refused: ${attached.reason} — delete the agent's session.json to start a new one`, true));
  }
  const outcome = await recordHello(connectionId, message.agent, message.session.id, now);
  if (outcome === "duplicate") return reply(error("duplicate-hello", "this connection already said hello; nothing changed"));
  if (outcome === "unknown-connection") return reply(UNKNOWN_CONNECTION);
  // A session speaks on one connection: an older one still open is closed (its tasks stay).
  if (attached.previousConnectionId) await closeAgentConnection(attached.previousConnectionId);
  const welcome: ServiceMessage = {
    type: "welcome",
    protocolVersion: PROTOCOL_VERSION,
    serviceVersion: NIMBUS_VERSION,
    connectionId,
    heartbeatIntervalMs: timing().heartbeatIntervalMs,
  };
  const resume = await resumeTasks(attached.session, message.tasksInProgress);
  return { replies: [welcome, ...resume], followUp: () => dispatchTo(message.session.id) };
}

/** What to answer one valid message with, and what to do after answering. */
async function handle(connectionId: string, message: AgentMessage, now: Date): Promise<Answer> {
  if (message.type === "hello") return hello(connectionId, message, now);
  if (message.type === "heartbeat") {
    const touched = await touchConnection(connectionId, now);
    if (!touched.ok) return reply(touched.reason === "hello-required" ? HELLO_REQUIRED : UNKNOWN_CONNECTION);
    await touchSession(touched.sessionId, now);
    return reply({ type: "heartbeat-ack", sentAt: now.toISOString() });
  }
  // Everything else speaks for the agent's session.
  const connection = await getConnection(connectionId);
  if (!connection) return reply(UNKNOWN_CONNECTION);
  if (!connection.sessionId) return reply(HELLO_REQUIRED);
  const session = await getSession(connection.sessionId);
  if (!session || session.connectionId !== connectionId) return reply(UNKNOWN_CONNECTION);
  return sessionMessage(session, message);
}

async function sessionMessage(session: SessionItem, message: Exclude<AgentMessage, { type: "hello" | "heartbeat" }>): Promise<Answer> {
  const more = () => dispatchTo(session.sessionId);
  switch (message.type) {
    case "request-work":
      return { replies: [], followUp: more };
    case "pause":
      await setDraining(session.sessionId);
      return reply();
    case "goodbye":
      await endSession(session, "its agent shut down");
      return reply();
    case "evaluation-events":
      return reply(await handleEvaluationEvents(session, message));
    case "evaluation-done":
      return { replies: [await handleEvaluationDone(session, message)], followUp: more };
    case "build-log": {
      const refused = await handleBuildLog(session, message);
      return refused ? reply(refused) : reply();
    }
    case "build-result":
      return { replies: [await handleBuildResult(session, message)], followUp: more };
  }
}

/** Handles one frame from an agent: answer it, end the connection after a fatal error, then follow up. */
export async function handleAgentFrame(connectionId: string, body: string | undefined, now = new Date()) {
  const decoded = decodeAgentMessage(body);
  const answer: Answer = decoded.ok ? await handle(connectionId, decoded.message, now) : reply(decoded.error);
  for (const message of answer.replies) {
    if (!(await sendToAgent(connectionId, message))) return;
    if (message.type === "error" && (message.fatal || message.code === "unknown-connection")) {
      await closeAgentConnection(connectionId);
      return;
    }
  }
  await answer.followUp?.();
  await wakeIdleAgents();
}
