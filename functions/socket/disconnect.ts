import { forgetConnection, type SocketEvent, type SocketResult } from "@nimbus/service";

/** `$disconnect` (best-effort in AWS: GoneException and the sweeper catch the rest); the agent's tasks go back. */
export async function handler(event: SocketEvent): Promise<SocketResult> {
  await forgetConnection(event.requestContext.connectionId);
  return { statusCode: 200 };
}
