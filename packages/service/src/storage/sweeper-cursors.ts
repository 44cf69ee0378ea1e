import type { SweeperCursorItem } from "./items.ts";
import { SweeperCursors } from "./tables.ts";

/** Where a sweeper step stopped last time, if it did not get through its index. */
export async function loadCursor(step: string): Promise<SweeperCursorItem["startKey"] | undefined> {
  return (await SweeperCursors.get({ step }))?.startKey;
}

/** Saves where a step stopped, or forgets it (`undefined`: the step got through, the next sweep starts over). */
export async function saveCursor(step: string, startKey: SweeperCursorItem["startKey"] | undefined, now: Date): Promise<void> {
  if (startKey) await SweeperCursors.put({ step, startKey, savedAt: now.toISOString() });
  else await SweeperCursors.delete({ step });
}
