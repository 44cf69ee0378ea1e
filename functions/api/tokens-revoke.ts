import { apiHandler, badRequest, disconnectToken, json, revokeToken } from "@nimbus/service";

/** `DELETE /api/tokens/{id}`: revoke, and end the connections that joined with it. */
export const handler = apiHandler(async (event) => {
  const id = event.pathParameters?.id;
  if (!id || !/^[0-9a-f]{20}$/.test(id)) throw badRequest("token id must be the 20 hex characters `nimbus token list` shows");
  const token = await revokeToken(id);
  await disconnectToken(id);
  return json(200, token);
}, { bearerOnly: true });
