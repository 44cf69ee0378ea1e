import { cacheHandler, serveNar } from "@nimbus/service";

/** `/cache/nar/<file>`: a redirect to a presigned S3 URL; HEAD and a write token's PUT for `nix copy --to`. */
export const handler = cacheHandler(serveNar);
