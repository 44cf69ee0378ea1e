import { CreateTokenRequest } from "@nimbus/protocol";
import { apiHandler, createToken, json, parseBody } from "@nimbus/service";

/** `POST /api/tokens`: a new cluster join token; the only answer that shows its secret. */
export const handler = apiHandler(async (event) => {
  const { name } = parseBody(event, CreateTokenRequest);
  return json(201, await createToken(name));
}, { bearerOnly: true });
