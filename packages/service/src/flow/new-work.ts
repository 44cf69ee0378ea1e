import type { NewWork } from "@nimbus/core";

/**
 * The work one handler invocation queued, noted as it goes: before it answers, the handler
 * wakes idle agents that can take it (flow/dispatch.ts `wakeIdleAgents`), then reports the
 * jobs it changed (flow/job-reports.ts `reportChangedJobs`). Made per invocation and passed
 * down explicitly, so nothing carries over between invocations.
 */
export class WorkNotes implements NewWork {
  readonly queueKeys = new Set<string>();
  evaluations = false;
  /** How many tasks were queued (or may wait on a queue again): a wake fills at most that many idle agents. */
  tasks = 0;

  /** A derivation was sent to this build queue. */
  addBuildQueue(queueKey: string): void {
    this.queueKeys.add(queueKey);
    this.tasks++;
  }

  /** Sessions that can take builds another agent received and left in their queue for them. */
  readonly leftFor = new Set<string>();

  /** Builds of this queue were left for these sessions (the ones that can obtain their inputs). */
  addLeftFor(queueKey: string, sessionIds: Iterable<string>): void {
    this.queueKeys.add(queueKey);
    for (const id of sessionIds) this.leftFor.add(id);
  }

  /** Jobs that were created or changed (status, derivations settled): GitHub hears of them. */
  readonly changedJobs = new Set<string>();

  /** An evaluation was queued (any agent may take it); `count` when several may be waiting. */
  addEvaluation(count = 1): void {
    this.evaluations = true;
    this.tasks += count;
  }

  /** An effect was queued: any idle agent is woken, as for an evaluation (the claim checks its system). */
  addEffect(): void {
    this.evaluations = true;
    this.tasks++;
  }

  /** A job was created or changed. */
  addChangedJob(jobId: string): void {
    this.changedJobs.add(jobId);
  }
}
