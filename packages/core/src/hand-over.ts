/**
 * Hand-over (docs/scale.md, "Hand-over"): a build result that makes a dependent ready may give
 * it straight to the agent that sent the result — one write leases it, no build queue carries
 * it — when that agent can take it now. These rules say when; the service's settle flow
 * carries them out (flow/hand-over.ts). Pure, like dispatch-plan.ts beside it.
 */
import { freeSlots, type SessionLoad } from "./dispatch-plan.ts";
import { placeBuild, type BuildNeeds, type Candidate } from "./obtaining.ts";

/**
 * Builds one result may hand its agent: the slot that result freed. More dependents, and the
 * agent's other free slots, go through the queues, where other jobs' work waits its turn.
 */
export const HAND_OVERS_PER_RESULT = 1;

/** The reporting agent's session as its result's release left it. */
export type HandOverSession = SessionLoad & Candidate;

export interface HandOverState {
  /** Builds this result handed the session already. */
  handedOver: number;
  /** Evaluations may be waiting (their queue is served first: core `planDispatch`), so the slot goes to a dispatch instead. */
  evaluationsMayWait: boolean;
}

/** How many more builds this result may hand its session: its free slots after the release, at most HAND_OVERS_PER_RESULT in all. */
export function handOverSlots(session: HandOverSession, state: HandOverState): number {
  if (state.evaluationsMayWait) return 0;
  return Math.max(0, Math.min(HAND_OVERS_PER_RESULT, freeSlots(session)) - state.handedOver);
}

/**
 * Whether the session may take this build by hand-over now: a slot is left for one (connected,
 * not draining, below its `concurrentTasks`), and it is `here` by core `placeBuild` — Nix's rule
 * and every need within its reach. With `needs` empty it judges what is known before the
 * build's inputs are read.
 */
export function mayHandOver(session: HandOverSession, build: BuildNeeds, state: HandOverState): boolean {
  return handOverSlots(session, state) > 0 && placeBuild(session, build, []) === "here";
}

/** What a handler saw at its last receive from a queue that rarely holds work (evaluations). */
export interface QueueLook {
  /** When (ms since the epoch). */
  at: number;
  /** Whether the receive got messages. */
  found: boolean;
}

/**
 * A handler that has not looked at the evaluation queue for this long no longer believes it
 * empty for a hand-over: the next result goes through a dispatch, which looks. An evaluation
 * thus waits at most about this long for an agent that hand-overs keep busy.
 */
export const LOOK_AGAIN_AFTER_MS = 10_000;

/** Whether a queue may hold work, as far as a handler knows: never looked at, work found at the last look, or that look is old. */
export const mayHoldWork = (look: QueueLook | undefined, now: number): boolean =>
  look === undefined || look.found || now - look.at > LOOK_AGAIN_AFTER_MS;
