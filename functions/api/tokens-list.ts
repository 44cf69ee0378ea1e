import type { TokenList } from "@nimbus/protocol";
import { apiHandler, json, listTokens } from "@nimbus/service";

/** `GET /api/tokens`: ids, names and dates; never secrets. */
export const handler = apiHandler(async () => {
  const body: TokenList = { tokens: await listTokens() };
  return json(200, body);
}, { bearerOnly: true });
