import { bearerToken, openConnection, verifyToken, type SocketEvent, type SocketResult } from "@nimbus/service";

/** `$connect`: only agents with a live cluster join token get a connection (and a row). */
export async function handler(event: SocketEvent): Promise<SocketResult> {
  const check = await verifyToken(bearerToken(event.headers));
  if (!check.ok) {
    return { statusCode: 401, body: `cluster join token refused (${check.reason}) — create one with \`nimbus token create\`` };
  }
  const { connectionId, identity } = event.requestContext;
  await openConnection({ connectionId, tokenId: check.tokenId, sourceIp: identity.sourceIp, now: new Date() });
  return { statusCode: 200 };
}
