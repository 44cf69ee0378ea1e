import type { NewWork } from "@nimbus/core";

/**
 * The work one handler invocation queued, noted as it goes: before it answers, the handler
 * wakes idle agents that can take it (flow/dispatch.ts `wakeIdleAgents`). Made per invocation
 * and passed down explicitly, so nothing carries over between invocations.
 */
export class WorkNotes implements NewWork {
  readonly queueKeys = new Set<string>();
  evaluations = false;

  /** A derivation was sent to this build queue. */
  addBuildQueue(queueKey: string): void {
    this.queueKeys.add(queueKey);
  }

  /** An evaluation was queued (any agent may take it). */
  addEvaluation(): void {
    this.evaluations = true;
  }
}
