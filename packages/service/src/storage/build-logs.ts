import type { BuildLogItem } from "./items.ts";
import { BuildLogs } from "./tables.ts";

/** Stores one batch of log lines (idempotent: the chunk number is the attempt and the batch number). */
export async function putLogChunk(item: BuildLogItem): Promise<void> {
  await BuildLogs.put(item);
}
