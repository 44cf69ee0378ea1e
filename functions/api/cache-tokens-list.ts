import { apiHandler, json, listCacheTokenViews } from "@nimbus/service";

/** `GET /api/cache/tokens`: cache-scoped tokens, never their secrets. */
export const handler = apiHandler(async () => json(200, { tokens: await listCacheTokenViews() }));
