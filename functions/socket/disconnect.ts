import { removeConnection, type SocketEvent, type SocketResult } from "@nimbus/service";

/** `$disconnect` (best-effort in AWS: the sweeper and GoneException catch the rest). */
export async function handler(event: SocketEvent): Promise<SocketResult> {
  await removeConnection(event.requestContext.connectionId);
  return { statusCode: 200 };
}
