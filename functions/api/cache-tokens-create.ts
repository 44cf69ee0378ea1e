import { CreateCacheTokenRequest } from "@nimbus/protocol";
import { apiHandler, createCacheToken, json, parseBody } from "@nimbus/service";

/** `POST /api/cache/tokens`: a token that reads (or also writes) the built-in cache and opens nothing else. */
export const handler = apiHandler(async (event) => json(201, await createCacheToken(parseBody(event, CreateCacheTokenRequest))));
