import { cacheHandler, serveNarinfo } from "@nimbus/service";

/** `/cache/<hash>.narinfo`: read (signed by the service), or published by a write token's `nix copy --to`. */
export const handler = cacheHandler(serveNarinfo);
