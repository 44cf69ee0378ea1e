import { pruneIfGone } from "./agent-channel.ts";
import { listConnections } from "./connections.ts";

export interface SweepReport {
  connectionsChecked: number;
  connectionsRemoved: number;
}

/**
 * Removes connections the gateway no longer has: API Gateway's `$disconnect` is best-effort,
 * so a row can outlive its socket. Only rows quiet for longer than `staleAfterMs` are checked.
 */
export async function sweepConnections(now: Date, staleAfterMs: number): Promise<SweepReport> {
  const stale = (await listConnections()).filter((c) => now.getTime() - Date.parse(c.lastSeen) > staleAfterMs);
  let removed = 0;
  for (const connection of stale) {
    if (await pruneIfGone(connection.connectionId)) removed++;
  }
  return { connectionsChecked: stale.length, connectionsRemoved: removed };
}
