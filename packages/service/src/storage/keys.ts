/**
 * The constant values Nimbus writes into key attributes, declared once. The sparse indexes
 * (docs/reliability.md, "The sweeper") hold an item exactly while it carries its shard
 * attribute, so these letters are how an item enters and leaves an index. Index names are
 * declared with the tables in platform/resource-specs.ts and checked against it by the types.
 */
import { createHash } from "node:crypto";
import { MAX_LOG_BATCHES, type AttributePath, type DerivationStatus } from "@nimbus/protocol";

export const SHARD = {
  /** Jobs.listKey, always: the byCreated index lists every job, newest first. */
  jobList: "job",
  /** Jobs.activeShard while the job runs: byActivity. */
  activeJob: "a",
  /** Derivations.queuedShard while queued: byQueuedAt. */
  queued: "q",
  /** Derivations.buildingShard while leased to a session: byBuilding. */
  building: "b",
  /** Derivations.dueShard while a retry waits out its back-off: byDueAt. */
  due: "d",
  /** Derivations.propagateShard from settling until dependents and jobs were told: byUnpropagated. */
  unpropagated: "p",
  /** Connections.shard, always: byLastSeen. */
  connection: "c",
  /** Sessions.shard, always: byLastSeen — followed by the session's shard number (`sessionShard`). */
  session: "s",
  /** Reports.dueShard while a report waits to be sent: byDue. */
  reportDue: "r",
  /** Effects.readyShard while its builds are done and it waits for its turn or an agent: byReady. */
  effectReady: "e",
  /** Schedules.dueShard while it has a next run: byNextRun. */
  schedule: "s",
} as const;

/**
 * Sessions.shard: every heartbeat of a session moves its byLastSeenKeys entry (and, when that
 * index projected the whole item, so did every slot change), so one constant would put every
 * agent's writes in one partition; the sweeper reads every shard (and the unnumbered one
 * sessions written before had).
 */
export const sessionShard = (shard: number) => `${SHARD.session}${shard}`;

/**
 * Shards of the sparse indexes whose key would otherwise be one constant: the Derivations
 * table's (byQueuedAt, byBuilding, byUnpropagated, byDueAt — every build enters and leaves the
 * first three), Jobs.byActivity (every job update rewrites its entry), Connections.byLastSeen,
 * Reports.byDue, Effects.byReady and Schedules.byNextRun. One constant each would be a
 * partition that takes every such write; readers ask every shard and merge in index order.
 */
export const INDEX_SHARDS = 4;
/** The shard value of an item, by its key, in the index whose letter is `letter` (SHARD.queued, …). */
export const indexShard = (letter: string, key: string) => `${letter}${createHash("sha256").update(key).digest().readUInt32BE(0) % INDEX_SHARDS}`;
/** Every partition of such an index: its shards, and the unnumbered one of items written before shards. */
export const indexShards = (letter: string): string[] => [letter, ...Array.from({ length: INDEX_SHARDS }, (_, i) => `${letter}${i}`)];

/** Jobs.heldKey while a fork's job waits for approval: byHeldCommit. */
export const heldKey = (repository: string, commit: string) => `${repository}#${commit}`;
/** Jobs.pullRequestKey of a pull request's jobs: byPullRequest. */
export const pullRequestKey = (repository: string, pullRequest: number) => `${repository}#${pullRequest}`;

/** JobDerivations.jobStatus: the byJobStatus index pages one status of one job. */
export const jobStatusKey = (jobId: string, status: DerivationStatus) => `${jobId}#${status}`;
/** Jobs.repositoryRef: the byRepositoryRef index lists one branch of one repository. */
export const repositoryRefKey = (repository: string, ref: string) => `${repository}\n${ref}`;
/** JobAttributes.attribute: JSON of the path, unique and sorting like the path. */
export const attributeKey = (path: AttributePath) => JSON.stringify(path);

/** BuildLogs.chunk: attempt × 1,000,000 + batch number, so the latest attempt's chunks sort last. */
export const LOG_CHUNKS_PER_ATTEMPT = MAX_LOG_BATCHES;
export const logChunk = (attempt: number, seq: number) => attempt * LOG_CHUNKS_PER_ATTEMPT + seq;
export const logAttemptOf = (chunk: number) => Math.floor(chunk / LOG_CHUNKS_PER_ATTEMPT);

