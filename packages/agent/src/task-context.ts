/** What every task gets from the runner, and what it reports back. */
import type { Logger } from "./log.ts";
import type { NixEnvironment } from "./nix-options.ts";
import type { Link } from "./outbox.ts";

export interface TaskContext {
  /** The task's directory name under `<workDirectory>/eval` or `/build`. */
  directoryName: string;
  workDirectory: string;
  nix: NixEnvironment;
  link: Link;
  log: Logger;
  /** Aborted when the task is stopped (cancel, unknown-task, the agent leaving): it kills its Nix process and ends, reporting nothing. */
  signal: AbortSignal;
}

export interface TaskOutcome {
  status: "succeeded" | "failed" | "exceptional";
  error?: string;
}
