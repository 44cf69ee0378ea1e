/**
 * The agents' WebSocket seen from the service: the API Gateway @connections management API
 * (the local gateway serves the same API). A connection the gateway no longer has is removed
 * from the Connections table on sight, since its `$disconnect` may never come.
 */
import { DeleteConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { MAX_FRAME_BYTES, ServiceMessage } from "@nimbus/protocol";
import { gatewayManagement } from "../platform/aws-clients.ts";
import { forgetConnection, listConnections } from "./connections.ts";

const isGone = (error: unknown) => error instanceof Error && error.name === "GoneException";

/** Sends one message to an agent; false if its connection is gone (and now forgotten). */
export async function sendToAgent(connectionId: string, message: ServiceMessage): Promise<boolean> {
  const data = Buffer.from(JSON.stringify(ServiceMessage.parse(message)));
  if (data.length > MAX_FRAME_BYTES) {
    throw new Error(`refusing to send a ${message.type} message of ${data.length} bytes: frames are limited to ${MAX_FRAME_BYTES}`);
  }
  try {
    await gatewayManagement().send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
    return true;
  } catch (error) {
    if (!isGone(error)) throw error;
    await forgetConnection(connectionId);
    return false;
  }
}

/** Ends a connection; the row goes too, since `$disconnect` is best-effort. */
export async function closeAgentConnection(connectionId: string, now = new Date()): Promise<void> {
  try {
    await gatewayManagement().send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
  } catch (error) {
    if (!isGone(error)) throw error;
  }
  await forgetConnection(connectionId, now);
}

/** Ends every connection that joined with a token (after it is revoked). */
export async function disconnectToken(tokenId: string): Promise<number> {
  const connections = (await listConnections()).filter((c) => c.tokenId === tokenId);
  await Promise.all(connections.map((c) => closeAgentConnection(c.connectionId)));
  return connections.length;
}
