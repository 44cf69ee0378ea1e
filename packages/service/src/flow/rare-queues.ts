/**
 * What a warm handler believes of the queues that rarely hold work (evaluations, effects: a
 * message per job), from its own receives: a dispatch does not ask one it found empty a moment
 * ago, and a hand-over is made only while the evaluation queue is believed empty (core
 * `mayHoldWork`). Beliefs, never decisions: nothing leaves a queue because of them.
 */
import { mayHoldWork, type QueueLook, type QueueSource } from "@nimbus/core";
import { EVALUATION_QUEUE } from "../storage/evaluation-queue.ts";

/**
 * A receive that found a rare queue empty is believed this long: a dispatch does not ask it
 * again meanwhile. Safe because nothing is taken out of the queue: a message sent meanwhile by
 * another handler is received by this handler's first dispatch after that (or by one in the
 * handler that sent it, which wakes idle agents for it and forgets what it believed), and the
 * sweeper wakes idle agents for evaluations and effects that wait too long.
 */
const EMPTY_FOR_MS = 3_000;

/** The last receive from each rare queue, and when a hand-over last left a dispatch to look again. */
interface Look extends QueueLook {
  lookAgainAskedAt?: number;
}
const looks = new Map<string, Look>();

export function seemsEmpty(source: QueueSource, now = Date.now()): boolean {
  const look = looks.get(source.queue);
  return source.rare === true && look !== undefined && !look.found && now - look.at < EMPTY_FOR_MS;
}

/** A receive from a rare queue got `received` messages. */
export function noteReceived(source: QueueSource, received: number): void {
  looks.set(source.queue, { at: Date.now(), found: received > 0 });
}

/** This handler queued rare work (or the sweeper found some waiting): whatever it believed empty may not be. */
export function forgetEmpty(): void {
  looks.clear();
}

/**
 * Whether evaluations may be waiting, as far as this handler knows (a hand-over then leaves the
 * slot to a dispatch, which looks). When only because its last look is old, the caller's
 * dispatch is to look: the others count the look from now meanwhile, so one result, not every
 * result arriving until that look is done, goes through the queue for it. `asking: false` only
 * peeks: a caller that declines then leaves the asking to the hand-over that follows.
 */
export function evaluationsMayWait(now = Date.now(), { asking = true } = {}): boolean {
  const look = looks.get(EVALUATION_QUEUE);
  const believed = look && { at: Math.max(look.at, look.lookAgainAskedAt ?? 0), found: look.found };
  if (!mayHoldWork(believed, now)) return false;
  if (asking && look && !look.found) look.lookAgainAskedAt = now;
  return true;
}
