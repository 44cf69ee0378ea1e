/** API Gateway WebSocket limits (docs/protocol.md, "Limits"): every message Nimbus sends fits in one frame. */
export const MAX_FRAME_BYTES = 32 * 1024;
/** Messages over this close the connection with 1009, as API Gateway does. */
export const MAX_MESSAGE_BYTES = 128 * 1024;
/** API Gateway closes a connection after 2 hours, whatever happens on it. */
export const CONNECTION_LIFETIME_MS = 2 * 60 * 60 * 1000;
/** API Gateway closes a connection with no traffic for 10 minutes. */
export const IDLE_TIMEOUT_MS = 10 * 60 * 1000;
/** Agents heartbeat well inside the idle timeout. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 30 * 1000;
/** A build sends at most this many `build-log` batches (`seq` below it); the service keeps the last LOG_BATCHES_KEPT. */
export const MAX_LOG_BATCHES = 1_000_000;
/** The service keeps a build's last this many log batches: its tail, which says why it failed. */
export const LOG_BATCHES_KEPT = 1_000;
/** A `build` acknowledges at most this many results (`acks`); the service folds one, the result its invocation recorded. */
export const MAX_FOLDED_ACKS = 16;
/** The longest `askAgainMs` the service may ask for: an agent waits at most a minute to ask for work again. */
export const MAX_ASK_AGAIN_MS = 60_000;
