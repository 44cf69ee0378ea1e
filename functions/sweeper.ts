import { collectCache, sweep } from "@nimbus/service";

/** Scheduled every minute (CronV2 in AWS, a timer locally): the safety net of docs/reliability.md. */
export async function handler() {
  const report = { ...(await sweep()), ...(await collectCache()) };
  if (Object.values(report).some((v) => (Array.isArray(v) ? v.length > 0 : v > 0))) console.log(JSON.stringify({ sweep: report }));
  return report;
}
