/**
 * What a warm handler believes of the queues that rarely hold work (evaluations, effects: a
 * message per job), from its own receives: a dispatch does not ask one it found empty a moment
 * ago, and a hand-over is made only while the evaluation queue is believed empty (core
 * `mayHoldWork`). Beliefs, never decisions: nothing leaves a queue because of them.
 */
import { mayHoldWork, type QueueLook, type QueueSource } from "@nimbus/core";
import { EVALUATION_QUEUE } from "../storage/evaluation-queue.ts";

/**
 * Rare queues a receive found empty, and until when a dispatch believes it and does not ask.
 * A few seconds long; safe because nothing is taken out of the queue: a message sent meanwhile
 * by another handler is received by this handler's first dispatch after that (or by one in the
 * handler that sent it, which wakes idle agents for it and forgets what it believed), and the
 * sweeper wakes idle agents for evaluations and effects that wait too long.
 */
const EMPTY_FOR_MS = 3_000;
const emptyUntil = new Map<string, number>();

/** The last receive from each rare queue: what it found, and when. */
const looks = new Map<string, QueueLook>();

export const seemsEmpty = (source: QueueSource): boolean => source.rare === true && (emptyUntil.get(source.queue) ?? 0) > Date.now();

/** A receive from a rare queue got `received` messages. */
export function noteReceived(source: QueueSource, received: number): void {
  const now = Date.now();
  looks.set(source.queue, { at: now, found: received > 0 });
  if (received === 0) emptyUntil.set(source.queue, now + EMPTY_FOR_MS);
  else emptyUntil.delete(source.queue);
}

/** This handler queued rare work (or the sweeper found some waiting): whatever it believed empty may not be. */
export function forgetEmpty(): void {
  emptyUntil.clear();
  looks.clear();
}

/**
 * Whether evaluations may be waiting, as far as this handler knows (a hand-over then leaves the
 * slot to a dispatch, which looks). When only because its last look is old, the caller's
 * dispatch is to look: the others go on believing the queue empty meanwhile, so one result, not
 * every result arriving until that look is done, goes through the queue for it.
 */
export function evaluationsMayWait(now = Date.now()): boolean {
  const look = looks.get(EVALUATION_QUEUE);
  if (!mayHoldWork(look, now)) return false;
  if (look && !look.found) looks.set(EVALUATION_QUEUE, { at: now, found: false });
  return true;
}
