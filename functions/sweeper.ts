import { DEFAULT_HEARTBEAT_INTERVAL_MS } from "@nimbus/protocol";
import { sweepConnections } from "@nimbus/service";

/** Scheduled every minute (CronV2 in AWS, a timer locally). */
export async function handler() {
  const report = await sweepConnections(new Date(), 2 * DEFAULT_HEARTBEAT_INTERVAL_MS);
  if (report.connectionsRemoved > 0) console.log(JSON.stringify({ sweep: report }));
  return report;
}
