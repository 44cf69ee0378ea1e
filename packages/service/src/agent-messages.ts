import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  decodeAgentMessage,
  NIMBUS_VERSION,
  PROTOCOL_VERSION,
  type ErrorCode,
  type ServiceMessage,
} from "@nimbus/protocol";
import { closeAgentConnection, sendToAgent } from "./agent-channel.ts";
import { recordHello, touchConnection } from "./connections.ts";

const error = (code: ErrorCode, message: string, fatal = false): ServiceMessage => ({ type: "error", code, message, fatal });

const UNKNOWN_CONNECTION = error(
  "unknown-connection",
  "this connection is not registered (it may have been cleaned up): reconnect",
);

/** What to answer one agent frame with; state changes happen only for valid messages. */
async function answer(connectionId: string, body: string | undefined, now: Date): Promise<ServiceMessage> {
  const decoded = decodeAgentMessage(body);
  if (!decoded.ok) return decoded.error;
  const { message } = decoded;
  switch (message.type) {
    case "hello": {
      const outcome = await recordHello(connectionId, message.agent, now);
      if (outcome === "duplicate") return error("duplicate-hello", "this connection already said hello; nothing changed");
      if (outcome === "unknown-connection") return UNKNOWN_CONNECTION;
      return {
        type: "welcome",
        protocolVersion: PROTOCOL_VERSION,
        serviceVersion: NIMBUS_VERSION,
        connectionId,
        heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
      };
    }
    case "heartbeat": {
      const outcome = await touchConnection(connectionId, now);
      if (outcome === "hello-required") return error("hello-required", "send hello before anything else");
      if (outcome === "unknown-connection") return UNKNOWN_CONNECTION;
      return { type: "heartbeat-ack", sentAt: now.toISOString() };
    }
  }
}

/** Handles one frame from an agent: answer it, and end the connection after a fatal error. */
export async function handleAgentFrame(connectionId: string, body: string | undefined, now = new Date()) {
  const reply = await answer(connectionId, body, now);
  await sendToAgent(connectionId, reply);
  const ends = reply.type === "error" && (reply.fatal || reply.code === "unknown-connection");
  if (ends) await closeAgentConnection(connectionId);
}
