/**
 * The shape of every item Nimbus keeps in DynamoDB, one zod schema each (the type is its
 * z.infer). Reads parse through these (storage/table.ts), so a malformed item fails where it is
 * read, naming its table and key; writes are built from the types. Keys and indexes are in
 * platform/resource-specs.ts, the constant key values in storage/keys.ts.
 */
import type { BuilderCapabilities } from "@nimbus/core";
import { ReportState } from "@nimbus/github";
import { AgentInfo, AttributePath, DerivationStatus, EvaluationStatus, JobHandler, JobStatus, TimeConstraints, Trigger } from "@nimbus/protocol";
import { z } from "zod";
import { SHARD } from "./keys.ts";

/**
 * A DynamoDB string (or number) set: the document client reads one as a `Set`. A list written
 * by hand (a test, an older writer) is taken too, so readers always get a `Set`.
 */
const StringSet = z.union([z.set(z.string()), z.array(z.string())]).transform((v) => new Set(v));
const NumberSet = z.union([z.set(z.number()), z.array(z.number())]).transform((v) => new Set(v));
const Timestamp = z.string();

export const JobItem = z.object({
  jobId: z.string(),
  listKey: z.literal(SHARD.jobList),
  repository: z.string(),
  ref: z.string().optional(),
  commit: z.string(),
  cloneUrl: z.string(),
  trigger: Trigger,
  status: JobStatus,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  finishedAt: Timestamp.optional(),
  evaluation: z.object({
    status: EvaluationStatus,
    /** The current attempt's task id (a hand-back makes a new one: the earlier holder's messages are refused). */
    taskId: z.string(),
    /** Session that holds the evaluation lease while `running`. */
    sessionId: z.string().optional(),
    /** When the current holder leased it (the evaluation timeout runs from here). */
    leasedAt: Timestamp.optional(),
    /** How many times it was handed back (its agent left or was lost). */
    retries: z.number().optional(),
    agent: z.string().optional(),
    error: z.string().optional(),
    /** From evaluation-done: how many event batches the agent sent. */
    batches: z.number().optional(),
    /** Every batch numbered below this is recorded (core evaluation-batches.ts: bounded whatever the number of batches). */
    batchesBelow: z.number().optional(),
    /** Recorded batches past the first gap: fewer than core MAX_BATCHES_AHEAD (a number set). */
    batchesAbove: NumberSet.optional(),
    /** Every batch number recorded, as jobs made before `batchesBelow` kept them: folded in at the next batch. */
    batchesSeen: NumberSet.optional(),
    /** Caches the evaluating agent could not ask or push the `.drv` closure to, one line each. */
    cacheProblems: z.array(z.string()).optional(),
  }),
  /** Attribute evaluation errors count as failures of the job. */
  attributeErrors: z.number().optional(),
  /** Present while the job runs, and while its cancellation is under way: the byActivity index's hash key. */
  activeShard: z.string().optional(),
  /** `repository` + "\n" + `ref`: the byRepositoryRef index's hash key (storage/keys.ts `repositoryRefKey`). */
  repositoryRef: z.string().optional(),
  /**
   * The job keeps its derivations' counts per status (storage/job-counts.ts) in `count_<status>`;
   * jobs made before that are counted from the byJobStatus index instead.
   */
  countsKept: z.literal(true).optional(),
  count_waiting: z.number().optional(),
  count_queued: z.number().optional(),
  count_building: z.number().optional(),
  count_succeeded: z.number().optional(),
  count_failed: z.number().optional(),
  "count_dependency-failed": z.number().optional(),
  count_cancelled: z.number().optional(),
  count_cached: z.number().optional(),
  /** The job was cancelled and its derivations are still being cancelled (a bounded part per call). */
  cancelling: z.literal(true).optional(),
  /** Where the cancellation goes on: after this derivation of the job's rows. */
  cancelFrom: z.string().optional(),
  /** The statuses of the rows before `cancelFrom`, as the cancellation left them: the job's counts once it ends. */
  cancelCounts: z.partialRecord(DerivationStatus, z.number()).optional(),
  /** `owner/name` on GitHub: its reports go there (docs/github.md); false for `nimbus trigger` of a local repository. */
  onGithub: z.boolean().optional(),
  /** Fetching needs a clone credential, minted when the evaluation is sent. */
  private: z.boolean().optional(),
  /** A fork's commit: no secrets and no effects, told to the agent with every evaluation. */
  untrusted: z.boolean().optional(),
  /** The GitHub App installation that sent the webhook (saves a lookup when minting tokens). */
  installationId: z.number().optional(),
  /** While `held`: repository#commit, the byHeldCommit index's hash key. */
  heldKey: z.string().optional(),
  /** While `held`: why, as the report says it. */
  holdReason: z.string().optional(),
  /** While `held`: the pull request label that approves it, as the webhook policy named it (docs/github.md). */
  approvalLabel: z.string().optional(),
  /** A pull request's job: repository#number, the byPullRequest index's hash key. */
  pullRequestKey: z.string().optional(),
  /**
   * The `herculesCI` handler whose outputs it holds (docs/effects.md): set when created for a
   * named handler, or when the push's first job's evaluation says which one it walked.
   */
  handler: JobHandler.optional(),
  /** The push's first job, for the jobs made for its other `onPush` handlers. */
  pushJobId: z.string().optional(),
  /** The repository's default branch, as the push said it: secrets' `isDefaultBranch` (docs/effects.md). */
  defaultBranch: z.string().optional(),
  /** How many effects its evaluation found (the Effects table holds them); absent: none. */
  effectCount: z.number().optional(),
});
export type JobItem = z.infer<typeof JobItem>;

/** What GitHub was last told of a job (flow/job-reports.ts); only for jobs on GitHub while reporting is on. */
export const ReportItem = z.object({
  jobId: z.string(),
  state: ReportState,
  /** Send again at this time (the sweeper does): a throttle, a rate limit or a back-off. */
  dueAt: Timestamp.optional(),
  /** Present with `dueAt`: the byDue index's hash key. */
  dueShard: z.string().optional(),
  /** Someone is sending until then; others leave a due time instead of sending too. */
  leaseUntil: Timestamp.optional(),
  leaseToken: z.string().optional(),
});
export type ReportItem = z.infer<typeof ReportItem>;

/** `X-GitHub-Delivery` → job. */
export const DeliveryItem = z.object({
  deliveryId: z.string(),
  jobId: z.string(),
  createdAt: Timestamp,
});
export type DeliveryItem = z.infer<typeof DeliveryItem>;

/**
 * One status move as stored on the Derivations item. Attempt numbers are not stored: core
 * `statusHistory` counts them back from the item's `attempt`, one for each `bump`.
 */
export const HistoryEntry = z.object({
  at: Timestamp,
  status: DerivationStatus,
  /** This move added one to `attempt` (a retry or a restart). */
  bump: z.literal(true).optional(),
  agent: z.string().optional(),
  reason: z.string().optional(),
  exitCode: z.number().optional(),
  /** How the attempt before this move ended, when the move back to queued does not say (a retry). */
  ended: z.enum(["exceptional", "lost"]).optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

export const DerivationItem = z.object({
  drvPath: z.string(),
  system: z.string(),
  /** Sorted. */
  requiredFeatures: z.array(z.string()),
  outputs: z.record(z.string(), z.string()),
  status: DerivationStatus,
  /**
   * Counts every status move (and only those): what the per-job mirrors are ordered by, and
   * what a write that acts on a status it read is conditional on. Absent on items written before.
   */
  version: z.number().optional(),
  /**
   * `#part/<i>` for each part of a split event not yet received (a small string set; absent
   * when none). The inputs it waits for are on the item or rows in PendingInputs (below).
   */
  pendingParts: StringSet.optional(),
  /**
   * Its inputs are on the item (storage/inputs-on-item.ts): a registration created it with at
   * most INPUTS_ON_ITEM of them, listed in `inputs`, and those without outputs yet in
   * `pendingInputs` (each set absent when empty). Absent: its inputs are rows only.
   */
  inputsOnItem: z.literal(true).optional(),
  inputs: StringSet.optional(),
  pendingInputs: StringSet.optional(),
  /** A later registration (a restart, a part) put input rows too: readers look at both. */
  inputRows: z.literal(true).optional(),
  /**
   * Of its inputs on the item, those built: each one's output paths and sources, added as its
   * pending input is cleared (or when it is created with it built), so queueing it needs no read
   * of them (core build-start.ts; each entry at most BUILT_INPUT_BYTES). Absent when none.
   */
  inputsBuilt: z.array(z.object({ drvPath: z.string(), outputs: z.array(z.string()), sources: z.array(z.string()).optional() })).optional(),
  /** Name of the build queue it was sent to. */
  queueKey: z.string(),
  /**
   * The jobs that need it, while that list is known whole (a string set, at most
   * `MAX_KNOWN_JOBS`): a status move's mirror writes their rows without asking the byDrv index.
   * Absent — the index is asked — once a restart moved it out of a settled status (registrations
   * of a settled derivation do not add themselves), past the bound, or on items written before.
   */
  jobIds: StringSet.optional(),
  /** The job whose evaluation registered it (or started it over): only that job's evaluation may add parts to it. */
  registeredBy: z.string().optional(),
  /** Bumped on every retry and restart; part of the task id and dedup id. */
  attempt: z.number(),
  /**
   * Transient failures (a lost agent, an exceptional result) since it last started: what the
   * retry budget counts. A restart (rerun, rebuild) starts it over; `attempt` counts restarts too.
   */
  retries: z.number().optional(),
  /** The session holding the build while `building`: only it can settle it. */
  lease: z.object({ taskId: z.string(), sessionId: z.string(), leasedAt: Timestamp }).optional(),
  builtBy: z
    .object({ hostname: z.string(), sessionId: z.string().optional(), connectionId: z.string(), labels: z.record(z.string(), z.unknown()) })
    .optional(),
  failure: z
    .object({
      reason: z.string(),
      exitCode: z.number().optional(),
      logTail: z.array(z.string()).optional(),
      dependency: z.string().optional(),
    })
    .optional(),
  /** Why the last attempt was retried. */
  lastError: z.string().optional(),
  /** Its status moves, oldest first, the last 50–100 (storage/derivations.ts `moveDerivation` appends). */
  history: z.array(HistoryEntry).optional(),
  /**
   * Where a builder gets its `.drv` closure and inputs that needed no building, as the evaluation
   * reported it: each need lists places, one of which the builder must reach (core obtaining.ts).
   * Absent when the evaluating agent did not say.
   */
  needs: z.array(z.array(z.string())).optional(),
  /** Where its outputs are once built: `store:<builder's store>`, `cache:<name>` for each push (a string set). */
  sources: StringSet.optional(),
  /** Pushes of its outputs that failed, one line each. */
  cacheProblems: z.array(z.string()).optional(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  /** When it last became ready, or was last sent to its queue (for latency and the sweeper). */
  queuedAt: Timestamp.optional(),
  /** Present while queued: the byQueuedAt index's hash key. */
  queuedShard: z.string().regex(/^q\d*$/).optional(),
  /** A retry waiting out its back-off: sent to its queue at `dueAt` by the sweeper. */
  dueShard: z.string().regex(/^d\d*$/).optional(),
  dueAt: Timestamp.optional(),
  /** Present while building: the byBuilding index's hash key. */
  buildingShard: z.string().regex(/^b\d*$/).optional(),
  /** Present from settling until dependents and jobs were told: the byUnpropagated index's hash key. */
  propagateShard: z.string().regex(/^p\d*$/).optional(),
  /** Where a settle that stopped half-way got to in the Edges rows (core `parseEdgePosition`); the next settle goes on after it. */
  propagatedThrough: z.string().optional(),
  finishedAt: Timestamp.optional(),
});
export type DerivationItem = z.infer<typeof DerivationItem>;

/** A derivation still waits for this input (a row while it is not built). */
export const PendingInputItem = z.object({
  drvPath: z.string(),
  inputDrv: z.string(),
  /** The job whose registration wrote it: a take-over of a split derivation removes its predecessor's rows. */
  by: z.string().optional(),
});
export type PendingInputItem = z.infer<typeof PendingInputItem>;

/** A derivation was registered as waiting for this input (kept once the input is built). */
export const DerivationInputItem = z.object({
  drvPath: z.string(),
  inputDrv: z.string(),
  /** The job whose registration wrote it (as for PendingInputItem). */
  by: z.string().optional(),
});
export type DerivationInputItem = z.infer<typeof DerivationInputItem>;

/**
 * input → dependent: one dependent (`dependentDrv` is its path), or a group of an evaluation
 * batch's dependents of the input (`dependents`, sorted; `dependentDrv` is then the row's key,
 * core `groupKey`), bounded by core's EDGE_GROUP_DEPENDENTS and EDGE_GROUP_BYTES.
 */
/**
 * Where a dependent with one input may be built (its Nix rule and its needs), on its edge row
 * when the row names it alone: the settle of that input may then hand it over in the write
 * that clears it (flow/hand-over.ts `handOverOnClear`) without reading it first.
 */
export const EdgePlacement = z.object({
  system: z.string(),
  requiredFeatures: z.array(z.string()),
  needs: z.array(z.array(z.string())).optional(),
});
export type EdgePlacement = z.infer<typeof EdgePlacement>;

export const EdgeItem = z.object({
  inputDrv: z.string(),
  dependentDrv: z.string(),
  dependents: z.array(z.string()).optional(),
  /** On a row of one dependent whose only input is `inputDrv`, written by the registration that created it. */
  sole: EdgePlacement.optional(),
});
export type EdgeItem = z.infer<typeof EdgeItem>;

export const JobDerivationItem = z.object({
  jobId: z.string(),
  drvPath: z.string(),
  /** The derivation's status, mirrored (storage/keys.ts `jobStatusKey`). */
  status: DerivationStatus,
  jobStatus: z.string(),
  /** The derivation's `version` the copy was taken at: an older copy never replaces a newer (core `isNewerThan`). */
  version: z.number().optional(),
  /** The version whose settle wrote this copy once every dependent was told (core `settleTold`): the sweeper need not tell them again. */
  told: z.number().optional(),
  /** Its failure alone does not fail the job: only may-fail attributes need it, or it is a must-fail attribute's own (core attribute-verdict.ts). */
  excused: z.enum(["may-fail", "must-fail"]).optional(),
});
export type JobDerivationItem = z.infer<typeof JobDerivationItem>;

export const JobAttributeItem = z.object({
  jobId: z.string(),
  /** JSON of the path (storage/keys.ts `attributeKey`). */
  attribute: z.string(),
  path: AttributePath,
  drvPath: z.string().optional(),
  attributeType: z.string().optional(),
  /** False when the evaluating agent found its outputs already valid. */
  needsBuild: z.boolean().optional(),
  error: z.string().optional(),
  /** Set (to jobId) only with `error`: the sparse byJobError index's hash key. */
  errorJobId: z.string().optional(),
});
export type JobAttributeItem = z.infer<typeof JobAttributeItem>;

export const EffectStatus = z.enum(["pending", "waiting", "queued", "running", "succeeded", "failed", "cancelled", "skipped"]);
export type EffectStatus = z.infer<typeof EffectStatus>;

/**
 * One effect of a job (docs/effects.md): `pending` until the job's builds succeed, `waiting`
 * for its turn on its line, `queued` for an agent, `running` on one, then `succeeded`, `failed`,
 * `cancelled` (its job was) or `skipped` (the builds failed, or a fork's job runs no effects).
 */
export const EffectItem = z.object({
  jobId: z.string(),
  /** storage/keys.ts `attributeKey` of its path. */
  attribute: z.string(),
  path: AttributePath,
  drvPath: z.string(),
  /** The derivation's system: an agent of it runs the effect (absent: any agent). */
  system: z.string().optional(),
  status: EffectStatus,
  /** repository#ref#attribute: effects of one line run one at a time, in job order. */
  lineKey: z.string(),
  /** The job's createdAt#jobId: the order on the line. */
  order: z.string(),
  /** Present while not finished: the byLine index's hash key. */
  activeLine: z.string().optional(),
  /** Present while waiting or queued: the byReady index's hash key. */
  readyShard: z.string().optional(),
  attempt: z.number(),
  taskId: z.string().optional(),
  sessionId: z.string().optional(),
  agent: z.string().optional(),
  queuedAt: Timestamp.optional(),
  startedAt: Timestamp.optional(),
  finishedAt: Timestamp.optional(),
  exitCode: z.number().optional(),
  error: z.string().optional(),
  logTail: z.array(z.string()).optional(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type EffectItem = z.infer<typeof EffectItem>;

/**
 * One `onSchedule` handler of a repository's default branch (docs/effects.md, "Schedules"), as
 * the latest evaluation of that branch's push said it.
 */
export const ScheduleItem = z.object({
  repository: z.string(),
  name: z.string(),
  when: TimeConstraints,
  /** What its jobs evaluate: the default branch's latest evaluated commit. */
  ref: z.string(),
  commit: z.string(),
  cloneUrl: z.string(),
  defaultBranch: z.string(),
  onGithub: z.boolean().optional(),
  private: z.boolean().optional(),
  installationId: z.number().optional(),
  /** The job whose evaluation said so, and when it was made: an older one changes nothing. */
  sourceJobId: z.string(),
  sourceCreatedAt: Timestamp,
  /** Present while it has a next run: the byNextRun index's hash key. */
  dueShard: z.string().optional(),
  nextRunAt: Timestamp.optional(),
  lastRunAt: Timestamp.optional(),
  lastJobId: z.string().optional(),
  updatedAt: Timestamp,
});
export type ScheduleItem = z.infer<typeof ScheduleItem>;

/** The lock of a line while one of its effects is queued or runs. */
export const EffectLineItem = z.object({
  lineKey: z.string(),
  /** jobId#attribute of the effect that holds it. */
  holder: z.string(),
  since: Timestamp,
});
export type EffectLineItem = z.infer<typeof EffectLineItem>;

export const BuildLogItem = z.object({
  drvPath: z.string(),
  /** storage/keys.ts `logChunk`: the latest attempt's chunks sort last. */
  chunk: z.number(),
  lines: z.array(z.string()),
});
export type BuildLogItem = z.infer<typeof BuildLogItem>;

/** Where a sweeper step stopped in its index: the key to go on after (the query's ExclusiveStartKey). */
export const SweeperCursorItem = z.object({
  step: z.string(),
  startKey: z.record(z.string(), z.union([z.string(), z.number()])),
  savedAt: Timestamp,
});
export type SweeperCursorItem = z.infer<typeof SweeperCursorItem>;

export const BuildQueueItem = z.object({
  queueKey: z.string(),
  queueName: z.string(),
  system: z.string(),
  features: z.array(z.string()),
  createdAt: Timestamp,
});
export type BuildQueueItem = z.infer<typeof BuildQueueItem>;

/** A capability class agents said hello with (core capability-class.ts): its id and what its agents can build. */
const BuilderCapabilitiesItem: z.ZodType<BuilderCapabilities> = z.lazy(() =>
  z.object({
    systems: z.array(z.string()),
    supportedFeatures: z.array(z.string()),
    mandatoryFeatures: z.array(z.string()),
    remotes: z.array(BuilderCapabilitiesItem).optional(),
  }),
);
export const AgentClassItem = z.object({
  classId: z.string(),
  capabilities: BuilderCapabilitiesItem,
  createdAt: Timestamp,
  /** The last hello (or agent-info) of an agent of this class; absent on classes written before it was kept. */
  lastHelloAt: Timestamp.optional(),
});
export type AgentClassItem = z.infer<typeof AgentClassItem>;

/** A cluster join token; only the secret's hash is stored. */
export const TokenItem = z.object({
  tokenId: z.string(),
  secretHash: z.string(),
  name: z.string(),
  createdAt: Timestamp,
  revokedAt: Timestamp.optional(),
});
export type TokenItem = z.infer<typeof TokenItem>;

/**
 * Dashboard sign-in (edges/dashboard-sessions.ts): a one-time code or a browser session, keyed
 * by the SHA-256 of its secret; the secrets themselves are never stored.
 */
export const DashboardSessionItem = z.object({
  /** `code#<sha256 hex>` or `session#<sha256 hex>`. */
  id: z.string(),
  kind: z.enum(["code", "session"]),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  /** The same instant in epoch seconds: DynamoDB's TTL deletes the item some time after (cleanup only). */
  expiresAtEpoch: z.number(),
  /** Sessions: what the page sends back as X-Nimbus-CSRF. */
  csrfToken: z.string().optional(),
  /** How the session was signed in: a one-time code or the API token. */
  via: z.enum(["code", "token"]).optional(),
});
export type DashboardSessionItem = z.infer<typeof DashboardSessionItem>;

/** One open WebSocket. `agent` and `sessionId` are set by the agent's hello; until then it is not listed. */
export const ConnectionItem = z.object({
  connectionId: z.string(),
  tokenId: z.string(),
  shard: z.string(),
  connectedAt: Timestamp,
  lastSeen: Timestamp,
  sourceIp: z.string().optional(),
  helloAt: Timestamp.optional(),
  agent: AgentInfo.optional(),
  sessionId: z.string().optional(),
});
export type ConnectionItem = z.infer<typeof ConnectionItem>;

/**
 * An agent's session, but for the tasks it holds: it outlives connections (reconnects, the
 * 2-hour cap) and carries the agent's slots. Only its secret's hash is stored. The whole item,
 * tasks included, is flow/sessions.ts `SessionItem`: task records are declared by the task
 * kinds (flow/tasks/registry.ts).
 */
export const SessionFields = z.object({
  sessionId: z.string(),
  secretHash: z.string(),
  tokenId: z.string(),
  /** `sessionShard` of the session's shard (or, written before shards, `SHARD.session` alone). */
  shard: z.string().regex(/^s\d*$/),
  /** The connection it speaks on now; absent while the agent is away. */
  connectionId: z.string().optional(),
  agent: AgentInfo,
  /** Tasks given and not yet ended: never above agent.concurrentTasks. */
  runningTasks: z.number(),
  /** The agent asked for no new work (it is shutting down). */
  draining: z.boolean().optional(),
  /** Its capability class and shard (core capability-class.ts) while not draining: the byCapability index. */
  capKey: z.string().optional(),
  /**
   * The byCapability index's order: agent.concurrentTasks − runningTasks while connected, kept
   * with runningTasks in the same writes; AWAY_SLOTS plus that while the agent is away.
   */
  idleSlots: z.number().optional(),
  /** The last problem with each cache this agent reported (a failed push, a cache it could not ask), until a push to it succeeds. */
  cacheProblems: z.record(z.string(), z.object({ problem: z.string(), at: Timestamp })).optional(),
  createdAt: Timestamp,
  lastSeen: Timestamp,
});
export type SessionFields = z.infer<typeof SessionFields>;
