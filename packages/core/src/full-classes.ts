/**
 * Full capability classes (docs/scale.md, "Full classes"): a wake that asked the byCapability
 * index about a class and found no session with a free slot may believe that for a short while
 * instead of asking again — in a saturated fleet, that answer is most of a build's wake reads.
 * What makes it safe is the other half: an agent whose freed slot the service left empty is told
 * to ask for work again (`askAgainMs`) later than any such belief can last, so work a skipped wake
 * would have brought it reaches it then. Pure: the warm handler keeps the times.
 */

/** Between the end of a belief and an agent's asking again: clocks of two machines, and the frame's trip. */
export const ASK_AGAIN_MARGIN_MS = 250;

/** Whether a class found full at `fullAt` may still be taken for full at `now`. */
export function believedFull(fullAt: number | undefined, now: number, trustMs: number): boolean {
  return fullAt !== undefined && now >= fullAt && now - fullAt < trustMs;
}

/** How long after being told an agent asks again: past the end of any belief formed before its slot came free. */
export function askAgainAfter(trustMs: number): number | undefined {
  return trustMs > 0 ? trustMs + ASK_AGAIN_MARGIN_MS : undefined;
}

/** Whether an agent's session, as its report left it, has a free slot: then its `result-ack` tells it to ask again. */
export const hasFreeSlot = (load: { runningTasks: number; agent: { concurrentTasks: number } }): boolean => load.runningTasks < load.agent.concurrentTasks;
