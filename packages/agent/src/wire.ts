/**
 * Frames on the agent socket: every outgoing message is checked against its schema and the
 * frame limit before it leaves; every incoming one is parsed with `ServiceMessage`.
 */
import { AgentMessage, MAX_FRAME_BYTES, ServiceMessage } from "@nimbus/protocol";

/** A message the agent built is invalid or too large: a bug or an oversized config value. */
export class OutgoingMessageError extends Error {
  override readonly name = "OutgoingMessageError";
}

/** Validated JSON text of `message`, at most `MAX_FRAME_BYTES` bytes. */
export function encodeAgentMessage(message: AgentMessage): string {
  const checked = AgentMessage.safeParse(message);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.join(".") || "(message)"}: ${i.message}`).join("; ");
    throw new OutgoingMessageError(`invalid "${message.type}" message: ${problems}`);
  }
  const text = JSON.stringify(checked.data);
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_FRAME_BYTES) {
    throw new OutgoingMessageError(`"${message.type}" message is ${bytes} bytes, over the ${MAX_FRAME_BYTES}-byte frame limit`);
  }
  return text;
}

export type Decoded = { ok: true; message: ServiceMessage } | { ok: false; problem: string };

const KNOWN_TYPES = new Set<string>(ServiceMessage.options.map((o) => o.shape.type.value));

/** Never throws: a bad frame is something to log and ignore, not a reason to drop the connection. */
export function decodeServiceMessage(text: string): Decoded {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: `ignored a frame that is not JSON (${text.length} characters)` };
  }
  const parsed = ServiceMessage.safeParse(json);
  if (parsed.success) return { ok: true, message: parsed.data };
  const type = typeof json === "object" && json !== null ? (json as { type?: unknown }).type : undefined;
  // API Gateway's own "Internal server error" lands here: show it, shortened.
  if (typeof type !== "string") return { ok: false, problem: `ignored a message without a string "type": ${excerpt(text)}` };
  if (!KNOWN_TYPES.has(type)) return { ok: false, problem: `ignored a message of unknown type "${type.slice(0, 64)}"` };
  const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
  return { ok: false, problem: `ignored an invalid "${type}" message (${problems})` };
}

function excerpt(text: string): string {
  return text.length <= 200 ? text : `${text.slice(0, 200)}…`;
}
