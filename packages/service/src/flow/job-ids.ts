import { randomBytes } from "node:crypto";

/**
 * A new job id: `j`, the creation time in milliseconds as 12 hex digits, then 8 random hex
 * digits — e.g. `j019aa7c3e5f1b24c9d0e`. Ids sort by creation time as strings (12 hex digits
 * last until the year 10889) and two jobs made in one millisecond still differ.
 */
export function newJobId(now: Date = new Date()): string {
  return `j${now.getTime().toString(16).padStart(12, "0")}${randomBytes(4).toString("hex")}`;
}

/** What a job id may look like in a URL; anything else cannot name a job. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
