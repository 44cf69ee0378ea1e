/**
 * Capability classes this warm handler's wakes found full (core full-classes.ts): for
 * `fullClassTrustMs` a wake does not ask the byCapability index about them again, unless a slot
 * came free in this handler meanwhile (storage/full-class-beliefs.ts). Each agent whose freed
 * slot stays empty is told to ask again after longer than that (`askAgainMs`, added here to its
 * `welcome` and `result-ack`): a slot freed in another handler (another Lambda container) ends
 * no belief here, and what a skipped wake would have given that agent, it finds then.
 */
import { askAgainAfter, believedFull, hasFreeSlot, type CapabilityClass } from "@nimbus/core";
import type { ResultAck } from "@nimbus/protocol";
import { timing } from "../platform/timing.ts";
import type { SessionFields } from "../storage/items.ts";
import { fullSince, noteClassLook } from "../storage/full-class-beliefs.ts";
import { idleSessionsOf } from "../storage/sessions.ts";

/**
 * Sessions of these classes with a free slot, as `idleSessionsOf` finds them, but for the
 * classes believed full, which are not asked: each class asked on its own, so a class that gave
 * none is believed full from the moment the look started.
 */
export async function idleSessionsOfOpen(classes: readonly CapabilityClass[], wanted: number): Promise<SessionFields[]> {
  const trustMs = timing().fullClassTrustMs;
  const started = Date.now();
  const asked = classes.filter((klass) => !believedFull(fullSince(klass.classId), started, trustMs));
  const found = await Promise.all(
    asked.map(async (klass) => {
      const sessions = await idleSessionsOf([klass], wanted);
      noteClassLook(klass.classId, sessions.length, started);
      return sessions;
    }),
  );
  return found.flat();
}

/** The `askAgainMs` agents are told (a welcome carries it: a new session was in no class's index when a wake found it full); none without trust. */
export const askAgainMs = (): number | undefined => askAgainAfter(timing().fullClassTrustMs);

/** A `result-ack` sent alone, telling its agent to ask again when the slot its result freed is still empty. */
export function ackAskingAgain(ack: ResultAck, load: Pick<SessionFields, "runningTasks" | "agent"> | undefined): ResultAck {
  const ms = askAgainMs();
  return ms !== undefined && (load === undefined || hasFreeSlot(load)) ? { ...ack, askAgainMs: ms } : ack;
}
