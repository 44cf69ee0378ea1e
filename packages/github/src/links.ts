/** Where reports link to in the dashboard. */

/** The job's page: `${publicUrl}/jobs/<jobId>`. */
export function jobUrl(publicUrl: string, jobId: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/jobs/${encodeURIComponent(jobId)}`;
}

/** One derivation's log on the job's page: `<job page>/logs/<hash>-<name>.drv`. */
export function logUrl(dashboardUrl: string, drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf("/") + 1);
  return `${dashboardUrl.replace(/\/+$/, "")}/logs/${encodeURIComponent(base)}`;
}
