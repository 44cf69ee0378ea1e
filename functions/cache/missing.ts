import { cacheHandler, serveMissing } from "@nimbus/service";

/** `POST /cache/missing`: which of up to 10,000 store paths the built-in cache lacks, in one request. */
export const handler = cacheHandler(serveMissing);
