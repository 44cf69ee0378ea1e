import { cacheHandler, serveNixCacheInfo } from "@nimbus/service";

/** `GET /cache/nix-cache-info`: the built-in cache's header for Nix (no credential needed: it says nothing private). */
export const handler = cacheHandler(serveNixCacheInfo);
