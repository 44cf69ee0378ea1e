import type { DerivationStatus, JobStatus } from "@nimbus/protocol";

type Status = JobStatus | DerivationStatus | "error" | "queued" | "running";

/** Words and colours per status; the word is always shown, so colour is never the only sign. */
const TONE: Record<string, "good" | "bad" | "busy" | "idle" | "warn"> = {
  succeeded: "good",
  cached: "good",
  failed: "bad",
  "dependency-failed": "bad",
  error: "bad",
  building: "busy",
  evaluating: "busy",
  running: "busy",
  queued: "warn",
  waiting: "idle",
  cancelled: "idle",
};

export function StatusBadge({ status }: { status: Status }) {
  return <span class={`status status-${TONE[status] ?? "idle"}`}>{status}</span>;
}
