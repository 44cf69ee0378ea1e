import type { z } from "zod";
import { PROTOCOL_VERSION } from "./version.ts";
import { AGENT_MESSAGE_TYPES, AgentMessage, type ErrorCode, type ErrorMessage } from "./messages.ts";

export type Decoded = { ok: true; message: AgentMessage } | { ok: false; error: ErrorMessage };

const fail = (code: ErrorCode, message: string, fatal = false): Decoded => ({
  ok: false,
  error: { type: "error", code, message, fatal },
});

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(message)"}: ${issue.message}`)
    .join("; ");
}

/**
 * Turns one frame from an agent into a message, or into the error the agent is told.
 * The protocol version is checked before the rest so an agent from another release hears
 * "upgrade" rather than a list of fields it does not know.
 */
export function decodeAgentMessage(body: string | undefined): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(body ?? "");
  } catch {
    return fail("malformed-json", "frame is not JSON: send one JSON object per WebSocket message");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail("invalid-message", "a message is a JSON object with a string `type`");
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string") {
    return fail("invalid-message", "a message is a JSON object with a string `type`");
  }
  if (!AGENT_MESSAGE_TYPES.includes(type as never)) {
    return fail("unknown-type", `unknown message type "${type.slice(0, 64)}"; expected one of ${AGENT_MESSAGE_TYPES.join(", ")}`);
  }
  if (type === "hello") {
    const version = (value as { protocolVersion?: unknown }).protocolVersion;
    if (version !== PROTOCOL_VERSION) {
      return fail(
        "protocol-version",
        `this service speaks agent protocol ${PROTOCOL_VERSION}, the agent sent ${JSON.stringify(version)}: install a Nimbus agent of the service's release`,
        true,
      );
    }
  }
  const parsed = AgentMessage.safeParse(value);
  if (!parsed.success) return fail("invalid-message", `invalid ${type} message: ${describe(parsed.error)}`);
  return { ok: true, message: parsed.data };
}
