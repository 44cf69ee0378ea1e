/**
 * This warm handler's latest copy of each session, as a read or a write that returned the whole
 * item left it (tasks included, unparsed: flow/sessions.ts knows their kinds). A frame that may
 * go on a recent copy (edges/agent-messages.ts) reads it instead of the session. A copy is never
 * what decides: every write it leads to is conditional on the item itself, and a copy another
 * container's write made stale costs a refused write or a fresh read (docs/protocol.md,
 * "Connection bookkeeping").
 */
import { z } from "zod";
import { SessionFields } from "./items.ts";

/** A session item as a write returns it: its tasks' records left to the reader. */
export const SessionWithTasks = SessionFields.extend({ tasks: z.record(z.string(), z.unknown()) });
export type SessionWithTasks = z.infer<typeof SessionWithTasks>;

const copies = new Map<string, { item: SessionWithTasks; at: number }>();
const KEPT = 10_000;

/** Keeps `item` as the session's copy; `at` is when the request that returned it was sent (the item is no older). */
export function keepSessionCopy<T extends SessionWithTasks | undefined>(item: T, at: number): T {
  if (!item) return item;
  // The oldest goes first once the map is full: a handler outlives many sessions.
  if (!copies.has(item.sessionId) && copies.size >= KEPT) copies.delete(copies.keys().next().value!);
  copies.set(item.sessionId, { item, at });
  return item;
}

/** The session's copy if it was taken at most `maxAgeMs` before `now` (and not after it). */
export function sessionCopy(sessionId: string, now: Date, maxAgeMs: number): SessionWithTasks | undefined {
  const copy = copies.get(sessionId);
  if (!copy || now.getTime() - copy.at > maxAgeMs || now.getTime() < copy.at) return undefined;
  return copy.item;
}

/** Drops the session's copy: it ended, or changed in a way the copy does not show. */
export function forgetSessionCopy(sessionId: string): void {
  copies.delete(sessionId);
}
