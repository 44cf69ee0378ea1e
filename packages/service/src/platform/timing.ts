import { ASK_AGAIN_MARGIN_MS } from "@nimbus/core";
import { DEFAULT_HEARTBEAT_INTERVAL_MS, IDLE_TIMEOUT_MS, MAX_ASK_AGAIN_MS } from "@nimbus/protocol";

/**
 * The timing knobs of docs/reliability.md ("Timing knobs"); the retry ones are the policy the
 * core's retry decision applies. Handlers read them from the environment (set by
 * sst.config.ts in AWS, by the local runtime's options locally), with these defaults.
 */
export interface Timing {
  /** How often agents heartbeat (told in `welcome`). */
  heartbeatIntervalMs: number;
  /**
   * A session whose connection closed (or went silent for two heartbeats) and that is not
   * back this long later has lost its agent: its tasks go to other agents.
   */
  disconnectGraceMs: number;
  /** A session silent this long has lost its agent (the sweeper's backstop for a lost disconnect check). */
  sessionGraceMs: number;
  /** A queued derivation not leased for this long is sent to its queue again. */
  requeueAfterMs: number;
  /** Back-off before retry n ≥ 2 is base × 3^(n−2), at most `retryMaxMs`; the first retry is at once. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Attempts (first build included) before a transient failure becomes a failure. */
  maxAttempts: number;
  /** Times an evaluation may be leased (its agent left or was lost in between) before the job's evaluation fails. */
  maxEvaluationAttempts: number;
  /** A running evaluation older than this fails, and its agent is told to stop. */
  evaluationTimeoutMs: number;
  /** How long one sweep may work, shared among its steps; what is left waits for the next sweep. */
  sweepBudgetMs: number;
  /**
   * How long a wake may take a capability class it found with no free slot for full, without
   * asking the index again (flow/full-classes.ts); agents are told to ask again after longer. 0: always ask.
   */
  fullClassTrustMs: number;
}

/** SQS's longest message delay. */
export const MAX_DELAY_MS = 15 * 60_000;

const DEFAULTS: Timing = {
  heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
  disconnectGraceMs: 20_000,
  sessionGraceMs: 3 * 60_000,
  requeueAfterMs: 2 * 60_000,
  retryBaseMs: 30_000,
  retryMaxMs: 30 * 60_000,
  maxAttempts: 5,
  maxEvaluationAttempts: 3,
  evaluationTimeoutMs: 60 * 60_000,
  // Under the sweeper Lambda's 50 s timeout.
  sweepBudgetMs: 40_000,
  fullClassTrustMs: 1_000,
};

const ENV: Record<keyof Timing, string> = {
  heartbeatIntervalMs: "NIMBUS_HEARTBEAT_INTERVAL_MS",
  disconnectGraceMs: "NIMBUS_DISCONNECT_GRACE_MS",
  sessionGraceMs: "NIMBUS_SESSION_GRACE_MS",
  requeueAfterMs: "NIMBUS_REQUEUE_AFTER_MS",
  retryBaseMs: "NIMBUS_RETRY_BASE_MS",
  retryMaxMs: "NIMBUS_RETRY_MAX_MS",
  maxAttempts: "NIMBUS_MAX_ATTEMPTS",
  maxEvaluationAttempts: "NIMBUS_MAX_EVALUATION_ATTEMPTS",
  evaluationTimeoutMs: "NIMBUS_EVALUATION_TIMEOUT_MS",
  sweepBudgetMs: "NIMBUS_SWEEP_BUDGET_MS",
  fullClassTrustMs: "NIMBUS_FULL_CLASS_TRUST_MS",
};

/** The environment variable of each knob, for whoever sets them (sst.config.ts, the local runtime). */
export const TIMING_ENV = ENV;

export function timing(): Timing {
  const read = (key: keyof Timing) => {
    const raw = process.env[ENV[key]];
    const value = raw === undefined || raw === "" ? NaN : Number(raw);
    return Number.isFinite(value) && value >= 0 ? value : DEFAULTS[key];
  };
  const t = Object.fromEntries((Object.keys(DEFAULTS) as (keyof Timing)[]).map((k) => [k, read(k)])) as unknown as Timing;
  // Heartbeats must keep the connection inside API Gateway's idle timeout.
  t.heartbeatIntervalMs = Math.min(Math.max(t.heartbeatIntervalMs, 100), IDLE_TIMEOUT_MS - 1);
  t.maxAttempts = Math.max(1, Math.floor(t.maxAttempts));
  t.maxEvaluationAttempts = Math.max(1, Math.floor(t.maxEvaluationAttempts));
  // SQS delays a message at most 15 minutes.
  t.disconnectGraceMs = Math.min(t.disconnectGraceMs, MAX_DELAY_MS);
  // Agents are told to ask again after longer than this, and wait at most a minute.
  t.fullClassTrustMs = Math.min(t.fullClassTrustMs, MAX_ASK_AGAIN_MS - ASK_AGAIN_MARGIN_MS);
  return t;
}
