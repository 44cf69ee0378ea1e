/**
 * Which `evaluation-events` batches a job has recorded, kept so that no item grows with the
 * number of batches (docs/reliability.md, "Results arrive once"): every batch numbered below
 * `below` is in, and the few recorded past the first gap are listed. An agent has at most a
 * handful of batches unacknowledged, so the list stays short; a batch too far past the gap is
 * refused (the agent sends it again later) rather than letting the list grow.
 */

/** How far past the lowest missing batch one may be recorded: the list never holds more. */
export const MAX_BATCHES_AHEAD = 64;

export interface BatchesSeen {
  /** Every batch numbered below this is recorded. */
  below: number;
  /** Recorded batches numbered above `below` (never `below` itself: that would have moved on). */
  above: ReadonlySet<number>;
}

export const NO_BATCHES_SEEN: BatchesSeen = { below: 0, above: new Set() };

/** Moves `below` past every batch listed right after it; what stays listed is past a gap. */
export function compactBatches(below: number, listed: Iterable<number>): BatchesSeen {
  const above = new Set([...listed].filter((seq) => seq >= below));
  let next = below;
  while (above.delete(next)) next++;
  return { below: next, above };
}

export const isBatchSeen = (seen: BatchesSeen, seq: number): boolean => seq < seen.below || seen.above.has(seq);

/** How many distinct batches are recorded. */
export const batchesSeenCount = (seen: BatchesSeen): number => seen.below + seen.above.size;

export type BatchNote =
  /** Recorded already: acknowledge it again, change nothing. */
  | { type: "seen" }
  /** Too far past `lowestMissing`: not recorded now; the agent sends it again once the gap is filled. */
  | { type: "too-far"; lowestMissing: number }
  /** Record it: the new state to write. */
  | { type: "note"; seen: BatchesSeen };

/** What recording batch `seq` does to what was seen. */
export function noteBatch(seen: BatchesSeen, seq: number): BatchNote {
  if (isBatchSeen(seen, seq)) return { type: "seen" };
  if (seq >= seen.below + MAX_BATCHES_AHEAD) return { type: "too-far", lowestMissing: seen.below };
  return { type: "note", seen: compactBatches(seen.below, [...seen.above, seq]) };
}
