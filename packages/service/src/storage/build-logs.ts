import type { BuildLogItem } from "./items.ts";
import { BuildLogs } from "./tables.ts";

/** Stores one batch of log lines (idempotent: the chunk number is the attempt and the batch number). */
export async function putLogChunk(item: BuildLogItem): Promise<void> {
  await BuildLogs.put(item);
}

/** Drops one batch (one that fell out of the kept tail); dropping a missing one is harmless. */
export async function deleteLogChunk(drvPath: string, chunk: number): Promise<void> {
  await BuildLogs.delete({ drvPath, chunk });
}
