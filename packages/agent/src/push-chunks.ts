/**
 * The pieces in which an evaluation pushes the `.drv` closures of what must be built (docs/agent.md,
 * "Evaluation"): the events of a piece go out once it is pushed, so the first builds start while
 * the rest is still being pushed.
 */

/**
 * The first piece: enough to keep a few builders busy while the next one is pushed, and few
 * enough that a closure of `.drv` files without references goes up in one round trip
 * (packages/cache UNASKED_MAX_PATHS).
 */
export const FIRST_CHUNK = 8;
/** Each piece this many times the one before: n derivations take at most about log4(n / 8) + 2 pieces. */
export const CHUNK_GROWTH = 4;

/** `items` cut into consecutive pieces of `first`, then each `growth` times the one before; the last takes what is left. */
export function growingChunks<T>(items: readonly T[], first = FIRST_CHUNK, growth = CHUNK_GROWTH): T[][] {
  if (!(Number.isInteger(first) && first >= 1 && growth >= 1)) throw new Error("chunks need a whole first size of at least 1 and a growth of at least 1");
  const chunks: T[][] = [];
  let at = 0;
  for (let size = first; at < items.length; size = Math.ceil(size * growth)) {
    // What would be left is smaller than this piece: it goes with it, no tail of a few.
    const end = items.length - (at + size) < size ? items.length : at + size;
    chunks.push(items.slice(at, end));
    at = end;
  }
  return chunks;
}
