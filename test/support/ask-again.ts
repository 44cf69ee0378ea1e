import { askAgainMs } from "../../packages/service/src/flow/full-classes.ts";

/** The `askAgainMs` a test stack's `welcome` and lone `result-ack`s carry (docs/protocol.md, "Asking again"). */
export const ASK_AGAIN_MS = askAgainMs();
