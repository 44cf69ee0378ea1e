import { JobReport, type JobReportInput } from "../src/job-report.ts";
import { jobUrl } from "../src/links.ts";

export const SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
export const JOB_ID = "j019aa7c3e5f1b24c9d0e";
export const DASHBOARD = jobUrl("https://nimbus.example.org", JOB_ID);
/** A derivation path with a made-up hash (32 characters, distinct per `i`). */
export const drv = (name: string, i = 0) => `/nix/store/${String(i).padStart(32, "a").slice(-32)}-${name}.drv`;

/** A valid report of a running job on octo/hello, with `overrides`. */
export function report(overrides: Partial<JobReportInput> = {}): JobReport {
  return JobReport.parse({
    jobId: JOB_ID,
    repository: "octo/hello",
    commit: SHA,
    status: "building",
    version: 1,
    createdAt: "2025-01-01T10:00:00.000Z",
    startedAt: "2025-01-01T10:00:05.000Z",
    counts: { succeeded: 3, queued: 2 },
    dashboardUrl: DASHBOARD,
    ...overrides,
  });
}
