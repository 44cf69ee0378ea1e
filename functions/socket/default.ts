import { handleAgentFrame, type SocketEvent, type SocketResult } from "@nimbus/service";

/** `$default`: every agent message; the answer goes back through @connections. */
export async function handler(event: SocketEvent): Promise<SocketResult> {
  const body = event.isBase64Encoded && event.body ? Buffer.from(event.body, "base64").toString("utf8") : event.body;
  await handleAgentFrame(event.requestContext.connectionId, body);
  return { statusCode: 200 };
}
