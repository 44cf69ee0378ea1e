/**
 * The shapes of the items Nimbus keeps in DynamoDB (see resources.ts for keys and indexes).
 * Every writer and reader goes through these types.
 */
import type { AttributePath, DerivationStatus, EvaluationStatus, JobStatus, Trigger } from "@nimbus/protocol";
import type { z } from "zod";

export interface JobItem {
  jobId: string;
  /** Constant "job": the hash key of the byCreated index, so jobs list newest first. */
  listKey: "job";
  repository: string;
  ref?: string;
  commit: string;
  cloneUrl: string;
  trigger: Trigger;
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  evaluation: {
    status: z.infer<typeof EvaluationStatus>;
    taskId: string;
    /** Session that holds the evaluation lease while `running`. */
    sessionId?: string;
    retries?: number;
    agent?: string;
    error?: string;
    /** From evaluation-done: how many event batches the agent sent. */
    batches?: number;
    /** Batch numbers processed so far (a number set: adding twice is harmless). */
    batchesSeen?: Set<number>;
  };
  /** Attribute evaluation errors count as failures of the job. */
  attributeErrors?: number;
  /** "a" while the job runs: the byActivity index's hash key. */
  activeShard?: "a";
}

export interface DeliveryItem {
  deliveryId: string;
  jobId: string;
  createdAt: string;
}

export interface DerivationItem {
  drvPath: string;
  system: string;
  /** Sorted. */
  requiredFeatures: string[];
  outputs: Record<string, string>;
  /** Input derivations that needed building (a string set; absent when none). */
  inputDrvs?: Set<string>;
  status: DerivationStatus;
  /** Inputs not yet succeeded, and `#part/<i>` for parts of the event not yet received (a string set; absent when empty). */
  pendingInputs?: Set<string>;
  /** Name of the build queue it was sent to. */
  queueKey: string;
  /** Bumped on every dispatch and retry; part of the task id and dedup id. */
  attempt: number;
  /** The session holding the build while `building`: only it can settle it. */
  lease?: { taskId: string; sessionId: string; leasedAt: string };
  builtBy?: { hostname: string; sessionId?: string; connectionId: string; labels: Record<string, unknown> };
  failure?: {
    reason: string;
    exitCode?: number;
    logTail?: string[];
    dependency?: string;
  };
  createdAt: string;
  updatedAt: string;
  /** When it last became ready, or was last sent to its queue (for latency and the sweeper). */
  queuedAt?: string;
  /** "q" while queued: the byQueuedAt index's hash key. */
  queuedShard?: "q";
  /** A retry waiting out its back-off: sent to its queue at `dueAt` by the sweeper. */
  dueShard?: "d";
  dueAt?: string;
  finishedAt?: string;
}

export interface EdgeItem {
  inputDrv: string;
  dependentDrv: string;
}

export interface JobDerivationItem {
  jobId: string;
  drvPath: string;
  status: DerivationStatus;
  /** `${jobId}#${status}`: the byJobStatus index pages one status of one job. */
  jobStatus: string;
}

export interface JobAttributeItem {
  jobId: string;
  /** JSON of the path: unique and sorts like the path. */
  attribute: string;
  path: AttributePath;
  drvPath?: string;
  attributeType?: string;
  /** False when the evaluating agent found its outputs already valid. */
  needsBuild?: boolean;
  error?: string;
}

export interface BuildLogItem {
  drvPath: string;
  /** attempt * 1_000_000 + seq, so the latest attempt's chunks sort last. */
  chunk: number;
  lines: string[];
}

export interface BuildQueueItem {
  queueKey: string;
  queueName: string;
  system: string;
  features: string[];
  createdAt: string;
}

export const jobStatusKey = (jobId: string, status: DerivationStatus) => `${jobId}#${status}`;
export const attributeKey = (path: AttributePath) => JSON.stringify(path);
export const logChunk = (attempt: number, seq: number) => attempt * 1_000_000 + seq;
