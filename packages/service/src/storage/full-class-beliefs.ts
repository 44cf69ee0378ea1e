/**
 * What this warm handler believes of capability classes with no free slot (flow/full-classes.ts
 * decides with it): when a look at the byCapability index last found each class full. A slot this
 * handler gives back, or a session it attaches, ends its class's belief at once — only other
 * handlers' slots need the agents' asking again.
 */

const fullAt = new Map<string, number>();

/** When a look that began at that time found the class full; undefined once a look found a free slot, or a slot came free here. */
export const fullSince = (classId: string): number | undefined => fullAt.get(classId);

/** A look that began `at` found `found` sessions with a free slot in the class. */
export function noteClassLook(classId: string, found: number, at: number): void {
  if (found === 0) fullAt.set(classId, at);
  else fullAt.delete(classId);
}

/** A slot came free, or a session joined the class, in this handler: it is not believed full any more. */
export function forgetFullClass(classId: string): void {
  fullAt.delete(classId);
}
