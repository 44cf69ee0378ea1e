import type { NewWork } from "@nimbus/core";
import type { ResultAck } from "@nimbus/protocol";
import type { SessionFields } from "../storage/items.ts";
import type { FreedSlot } from "./freed-slot.ts";
import type { OwedAck } from "./result-acks.ts";

/**
 * The agent whose report an invocation handles: its load once its slot is given back, whether a
 * dispatch gave it tasks since, and how many builds a settle handed it directly (flow/hand-over.ts).
 */
export interface Reporter {
  load: Promise<SessionFields | undefined>;
  dispatched: boolean;
  handedOver: number;
  /** The slot its result freed, while not yet written free: the first task given it takes it over (flow/freed-slot.ts). */
  slot?: FreedSlot;
  /** Its result's acknowledgement, recorded: the first build sent it carries it (flow/result-acks.ts). */
  ack?: OwedAck;
}

/** The reporter's load as a dispatch must see it: the release's, with the slots hand-overs took (written or about to be). */
export async function reporterLoad(reporter: Reporter): Promise<SessionFields | undefined> {
  const load = await reporter.load;
  return load && reporter.handedOver > 0 ? { ...load, runningTasks: load.runningTasks + reporter.handedOver } : load;
}

/** What `wakeSoon` runs: flow/dispatch.ts `wakeIdleAgents`, registered there (it imports this module, not the other way). */
let earlyWake: ((work: WorkNotes) => Promise<void>) | undefined;
export function setEarlyWake(wake: (work: WorkNotes) => Promise<void>): void {
  earlyWake = wake;
}

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
    this.queuedIn.set(queueKey, (this.queuedIn.get(queueKey) ?? 0) + 1);
    this.tasks++;
    this.buildsSinceWake++;
  }

  /** Builds sent to each build queue. */
  readonly queuedIn = new Map<string, number>();

  /**
   * The agent whose report this invocation handles, with its load once its slot is given back:
   * the first wake offers it the work before it asks the index for idle agents (flow/dispatch.ts
   * `wakeIdleAgents`); taken once.
   */
  private reporter: Reporter | undefined;
  private reporterTaken = false;

  offerFirstTo(load: Promise<SessionFields | undefined>, slot?: FreedSlot, ack?: OwedAck): void {
    this.reporter = { load, dispatched: false, handedOver: 0, ...(slot ? { slot } : {}), ...(ack ? { ack } : {}) };
    this.reporterTaken = false;
  }

  /** The reporting agent's `result-ack` if no build carried it: to send alone, once the invocation's dispatches are done. */
  ackNotCarried(): ResultAck | undefined {
    return this.reporter?.ack?.alone();
  }

  /** The reporting agent's load as its report left it (less what hand-overs took); undefined without a reporter. */
  async reporterLoad(): Promise<SessionFields | undefined> {
    return this.reporter ? reporterLoad(this.reporter) : undefined;
  }

  /**
   * Gives back the slot the report freed if nothing took it: for an invocation that ends without
   * dispatching to its agent (the connection went, or it failed half-way).
   */
  async releaseReporterSlot(): Promise<void> {
    await this.reporter?.slot?.release();
  }

  /**
   * The reporting agent, while no wake or follow-up has taken it: a settle may hand it a build
   * that became ready (flow/hand-over.ts). Once taken, its free slots are the dispatch's.
   */
  handOverReporter(): Reporter | undefined {
    return this.reporterTaken ? undefined : this.reporter;
  }

  /** The reporting agent, to the first that asks (a wake, or the report's follow-up); mark it `dispatched` once given its tasks. */
  takeReporter(): Reporter | undefined {
    if (!this.reporter || this.reporterTaken) return undefined;
    this.reporterTaken = true;
    return this.reporter;
  }

  /**
   * Whether the slot the report freed was filled already, so no follow-up dispatch is needed: a
   * wake of this invocation filled the reporting agent's free slots after its release, or a
   * settle handed it a build (its other free slots were free before the report, and work
   * queued for them since woke idle agents through the index).
   */
  get reporterDispatched(): boolean {
    return this.reporter?.dispatched === true || (this.reporter?.handedOver ?? 0) > 0;
  }

  /** Tasks given to the reporting agent, per queue: where they match what was queued, no idle agent need be looked for. */
  readonly givenToReporter = new Map<string, number>();

  /** Whether the reporting agent took from each build queue at least as many tasks as were queued there, and nothing else needs a wake. */
  coveredByReporter(): boolean {
    if (this.evaluations || this.leftFor.size > 0 || this.queueKeys.size === 0) return false;
    return [...this.queueKeys].every((key) => (this.givenToReporter.get(key) ?? 0) >= (this.queuedIn.get(key) ?? Infinity));
  }

  /** Builds queued since the last early wake: that wake fills up to this many agents, and the closing wake the rest. */
  private buildsSinceWake = 0;

  /** Tasks a dispatch received but its agent could not take (no slot after all): put back, for another agent. */
  refused = 0;

  noteRefused(): void {
    this.refused++;
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

  /**
   * Whether a settle's job check waits for `runJobChecks` (the edge that made these notes runs
   * it once the invocation's other moves are made: its count write then carries them all, one
   * write per job), or runs at once.
   */
  deferJobChecks = false;
  private readonly jobChecks = new Map<string, () => Promise<unknown>>();

  /** A settle's check of a job: kept for `runJobChecks` (the last one per job) when deferred, else run now. */
  async checkJob(jobId: string, check: () => Promise<unknown>): Promise<void> {
    if (this.deferJobChecks) this.jobChecks.set(jobId, check);
    else await check();
  }

  /** Runs the job checks kept so far; whether there were any (a job that ends may start effects, to wake for). */
  async runJobChecks(): Promise<boolean> {
    const checks = [...this.jobChecks.values()];
    this.jobChecks.clear();
    await Promise.all(checks.map((check) => check()));
    return checks.length > 0;
  }

  /**
   * Dependents this invocation told (flow/settle.ts): once past a page, the settles they start
   * in turn (a failure's dependents fail too) go on through the FanOut queue, not here.
   */
  dependentsTold = 0;

  /** The wake `wakeSoon` started, running beside the rest of the invocation. */
  private waking: Promise<void> | undefined;
  private wakeAgain = false;

  /**
   * Wakes idle agents for the build queues noted so far now, while the invocation goes on with
   * its bookkeeping, rather than when it is about to answer (docs/scale.md, idle dispatch).
   * Those queues are taken out of these notes, so the closing wake does not ask again for
   * them; one wake at a time, and work noted meanwhile gets the next. A wake that fails is
   * logged: the work stays on its queue for agents that ask, and for the sweeper.
   */
  wakeSoon(): void {
    const wake = earlyWake;
    if (!wake) return;
    if (this.waking) {
      this.wakeAgain = true;
      return;
    }
    this.waking = (async () => {
      do {
        this.wakeAgain = false;
        const batch = new WorkNotes();
        for (const key of this.queueKeys) batch.queueKeys.add(key);
        for (const [key, n] of this.queuedIn) batch.queuedIn.set(key, n);
        batch.tasks = this.buildsSinceWake;
        this.tasks -= this.buildsSinceWake;
        this.buildsSinceWake = 0;
        this.queueKeys.clear();
        this.queuedIn.clear();
        if (batch.queueKeys.size === 0) break;
        const reporter = this.takeReporter();
        if (reporter) batch.reporter = reporter;
        await wake(batch).catch((error: unknown) => console.error("waking idle agents early failed:", error));
      } while (this.wakeAgain);
    })().finally(() => {
      this.waking = undefined;
    });
  }

  /**
   * Wakes idle agents for the build queues noted so far, as `wakeSoon`, and waits for that wake:
   * for work that must not wait behind the invocation's bulk writes that follow.
   */
  async wakeFirst(): Promise<void> {
    this.wakeSoon();
    while (this.waking) await this.waking;
  }

  /** Waits for the wakes `wakeSoon` started, and what was to follow them: an invocation must not end while one runs. */
  async wakesDone(): Promise<void> {
    while (this.waking) await this.waking;
    while (this.afterWakes.length > 0) await Promise.all(this.afterWakes.splice(0));
  }

  private readonly afterWakes: Promise<unknown>[] = [];

  /**
   * Runs `fn` once the wake under way (if any) is done — bookkeeping the wake need not wait
   * for (flow/settle.ts: a queued derivation's job copies). `wakesDone` waits for it and
   * throws what it threw.
   */
  afterWake(fn: () => Promise<unknown>): void {
    const after = (this.waking ?? Promise.resolve()).then(fn);
    // Kept for wakesDone, which throws it; until then not an unhandled rejection.
    after.catch(() => {});
    this.afterWakes.push(after);
  }
}
