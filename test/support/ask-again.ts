import { askAgainAfter } from "@nimbus/core";
import { timing } from "@nimbus/service";

/** The `askAgainMs` a test stack's `welcome` and lone `result-ack`s carry (docs/protocol.md, "Asking again"). */
export const ASK_AGAIN_MS = askAgainAfter(timing().fullClassTrustMs);
