/** The `hello` that opens every connection (docs/agent.md, "Connecting, heartbeats, reconnecting"). */
import { type AgentInfo, type Hello, PROTOCOL_VERSION, type SessionCredential } from "@nimbus/protocol";
import { FRAME_BUDGET_BYTES, jsonBytes } from "./message-size.ts";

/** The protocol's cap on `tasksInProgress`. */
const MAX_TASKS_IN_PROGRESS = 1024;

/**
 * `held`: the tasks the agent still has (running, or awaiting `result-ack`), oldest first. As
 * many of their ids as the frame holds go in (1024 ids of 128 characters would not fit).
 */
export function buildHello(info: AgentInfo, session: SessionCredential, held: readonly string[]): Hello {
  const base: Hello = { type: "hello", protocolVersion: PROTOCOL_VERSION, agent: info, session, tasksInProgress: [] };
  let room = FRAME_BUDGET_BYTES - jsonBytes(base);
  const ids: string[] = [];
  for (const id of held.slice(0, MAX_TASKS_IN_PROGRESS)) {
    room -= jsonBytes(id) + 1;
    if (room < 0) break;
    ids.push(id);
  }
  return { ...base, tasksInProgress: ids };
}
