import { apiHandler, badRequest, json, revokeCacheTokenById } from "@nimbus/service";

/** `DELETE /api/cache/tokens/{id}`: revoke; the token is refused from its next request on. */
export const handler = apiHandler(async (event) => {
  const id = event.pathParameters?.id;
  if (!id || !/^[0-9a-f]{20}$/.test(id)) throw badRequest("cache token id must be the 20 hex characters `nimbus cache token list` shows");
  return json(200, await revokeCacheTokenById(id));
});
