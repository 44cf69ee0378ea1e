import { apiHandler, cacheInfo, json } from "@nimbus/service";

/** `GET /api/cache`: the built-in cache's URL, public key, size, path count and last collection. */
export const handler = apiHandler(async () => json(200, await cacheInfo()));
