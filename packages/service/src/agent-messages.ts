import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  decodeAgentMessage,
  NIMBUS_VERSION,
  PROTOCOL_VERSION,
  type AgentMessage,
  type ErrorCode,
  type ServiceMessage,
} from "@nimbus/protocol";
import { closeAgentConnection, sendToAgent } from "./agent-channel.ts";
import { handleBuildLog, handleBuildResult } from "./builds.ts";
import { getConnection, recordHello, touchConnection } from "./connections.ts";
import { dispatchTo, wakeIdleAgents } from "./dispatch.ts";
import { handleEvaluationDone, handleEvaluationEvents } from "./evaluation.ts";

const error = (code: ErrorCode, message: string, fatal = false): ServiceMessage => ({ type: "error", code, message, fatal });

const UNKNOWN_CONNECTION = error(
  "unknown-connection",
  "this connection is not registered (it may have been cleaned up): reconnect",
);
const HELLO_REQUIRED = error("hello-required", "send hello before anything else");

type Answer = { reply?: ServiceMessage; followUp?: () => Promise<unknown> };

/** What to answer one valid message with, and what to do after answering. */
async function handle(connectionId: string, message: AgentMessage, now: Date): Promise<Answer> {
  if (message.type === "hello") {
    const outcome = await recordHello(connectionId, message.agent, now);
    if (outcome === "duplicate") return { reply: error("duplicate-hello", "this connection already said hello; nothing changed") };
    if (outcome === "unknown-connection") return { reply: UNKNOWN_CONNECTION };
    const welcome: ServiceMessage = {
      type: "welcome",
      protocolVersion: PROTOCOL_VERSION,
      serviceVersion: NIMBUS_VERSION,
      connectionId,
      heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
    };
    return { reply: welcome, followUp: () => dispatchTo(connectionId) };
  }
  if (message.type === "heartbeat") {
    const outcome = await touchConnection(connectionId, now);
    if (outcome === "hello-required") return { reply: HELLO_REQUIRED };
    if (outcome === "unknown-connection") return { reply: UNKNOWN_CONNECTION };
    return { reply: { type: "heartbeat-ack", sentAt: now.toISOString() } };
  }
  // Everything else needs a registered agent.
  const connection = await getConnection(connectionId);
  if (!connection) return { reply: UNKNOWN_CONNECTION };
  if (!connection.agent) return { reply: HELLO_REQUIRED };
  switch (message.type) {
    case "request-work":
      return { followUp: () => dispatchTo(connectionId) };
    case "evaluation-events":
      return { reply: await handleEvaluationEvents(connectionId, message) };
    case "evaluation-done": {
      const reply = await handleEvaluationDone(connectionId, message);
      return { reply, followUp: () => dispatchTo(connectionId) };
    }
    case "build-log":
      return { reply: await handleBuildLog(connectionId, message) };
    case "build-result":
      return { reply: await handleBuildResult(connectionId, message) };
  }
}

/** Handles one frame from an agent: answer it, end the connection after a fatal error, then follow up. */
export async function handleAgentFrame(connectionId: string, body: string | undefined, now = new Date()) {
  const decoded = decodeAgentMessage(body);
  const answer: Answer = decoded.ok ? await handle(connectionId, decoded.message, now) : { reply: decoded.error };
  if (answer.reply) await sendToAgent(connectionId, answer.reply);
  if (answer.reply?.type === "error" && (answer.reply.fatal || answer.reply.code === "unknown-connection")) {
    await closeAgentConnection(connectionId);
    return;
  }
  await answer.followUp?.();
  await wakeIdleAgents();
}
