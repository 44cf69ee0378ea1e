import * as z from "zod";
import { FeatureName, SystemName } from "./agent-info.ts";
import { MAX_ASK_AGAIN_MS, MAX_FOLDED_ACKS, MAX_LOG_BATCHES } from "./limits.ts";
import { AttributePath, DrvPath, StorePath } from "./nix-names.ts";
import { JobConfig, JobHandler } from "./hercules-ci.ts";
import { CacheName, CacheReport, Need } from "./sources.ts";
import { CACHE_PUBLISH_WITH_RESULT, UploadedPath } from "./builtin-cache.ts";

/** How long after a `welcome` or a `result-ack` an agent sends `request-work` once more (docs/protocol.md, "Asking again"). */
export const AskAgainMs = z.number().int().positive().max(MAX_ASK_AGAIN_MS);

export const TaskId = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, "a task id");

// ---- service → agent -------------------------------------------------------

/** HTTPS basic-auth credentials for one fetch; `expiresAt` says how long git may use them. */
export const CloneCredential = z.strictObject({
  username: z.string().min(1).max(128),
  token: z.string().min(1).max(1024),
  expiresAt: z.iso.datetime(),
});
export type CloneCredential = z.infer<typeof CloneCredential>;

/** Evaluate a commit: clone it, evaluate ci.nix (or default.nix, or the flake), report events. */
export const EvaluateTask = z.strictObject({
  type: z.literal("evaluate"),
  taskId: TaskId,
  jobId: z.string().min(1).max(64),
  repository: z.string().min(1).max(256),
  cloneUrl: z.string().min(1).max(2048),
  commit: z.string().regex(/^[0-9a-f]{40}$/, "a full commit sha"),
  ref: z.string().max(512).optional(),
  /**
   * The systems whose flake outputs (`checks.<system>`, `packages.<system>`) the job holds:
   * every system a connected agent can build, so a job does not depend on which agent
   * evaluated it. Absent: the evaluating agent's own systems.
   */
  systems: z.array(SystemName).min(1).max(64).optional(),
  /**
   * A private repository's fetch credential (GitHub App mode): an installation token for this
   * one repository, read-only, minted when the task is sent and never stored. The agent hands
   * it to git outside the URL and the command line, and never to the evaluated code.
   */
  cloneCredential: CloneCredential.optional(),
  /** A fork's commit: evaluated and built without secrets, and it runs no effects (docs/github.md). */
  untrusted: z.literal(true).optional(),
  /**
   * The `herculesCI` handler whose outputs the job holds (docs/effects.md). Absent: the push's
   * first job, which reports every handler in `evaluation-done.config` and walks `onPush.default`
   * (else the first `onPush` name), or the whole file when it has no `herculesCI`.
   */
  handler: JobHandler.optional(),
});
export type EvaluateTask = z.infer<typeof EvaluateTask>;

/** Build one derivation with `nix-store --realise`; its inputs are already built. */
export const BuildTask = z.strictObject({
  type: z.literal("build"),
  taskId: TaskId,
  drvPath: DrvPath,
  system: SystemName,
  requiredFeatures: z.array(FeatureName).max(64),
  /** Output paths of its input derivations that Nimbus built: the agent substitutes them before building (Hercules' inputDerivationOutputPaths). */
  inputs: z.array(StorePath).max(2000).optional(),
  /** The caches that hold those outputs. */
  inputCaches: z.array(CacheName).max(64).optional(),
  /**
   * Results this agent reported that the service recorded: each id is acknowledged exactly as a
   * `result-ack` for it would be. The service folds a result's acknowledgement into the build it
   * sends next on that connection, and sends no `result-ack` for it then.
   */
  acks: z.array(TaskId).min(1).max(MAX_FOLDED_ACKS).optional(),
});
export type BuildTask = z.infer<typeof BuildTask>;

/**
 * Run an effect (docs/effects.md): the effect derivation's builder, after its inputs are
 * realised, in a sandbox with the network, given exactly the secrets it asks for whose condition
 * holds for the job (decided on the agent: the service never sees a secret).
 */
export const EffectTask = z.strictObject({
  type: z.literal("effect"),
  taskId: TaskId,
  jobId: z.string().min(1).max(64),
  /** The effect's attribute, e.g. ["effects", "deploy"]. */
  attribute: AttributePath,
  drvPath: DrvPath,
  /** `owner/name`, the job's ref and whether it is the default branch: what secrets' conditions are about. */
  repository: z.string().min(1).max(256),
  ref: z.string().max(512),
  isDefaultBranch: z.boolean(),
  /** Output paths of its input derivations that Nimbus built, and the caches holding them (as a build's). */
  inputs: z.array(StorePath).max(2000).optional(),
  inputCaches: z.array(CacheName).max(64).optional(),
});
export type EffectTask = z.infer<typeof EffectTask>;

/** Acknowledges one numbered batch of a task's stream (evaluation events, log lines). */
export const StreamAck = z.strictObject({
  type: z.literal("ack"),
  taskId: TaskId,
  seq: z.number().int().min(0),
});
export type StreamAck = z.infer<typeof StreamAck>;

/**
 * The service recorded a task's final message (`build-result` or `evaluation-done`); until
 * this arrives the agent keeps that message and sends it again after every reconnect.
 */
export const ResultAck = z.strictObject({
  type: z.literal("result-ack"),
  taskId: TaskId,
  /** The slot the result freed is empty: send `request-work` once this long after (docs/protocol.md, "Asking again"). */
  askAgainMs: AskAgainMs.optional(),
});
export type ResultAck = z.infer<typeof ResultAck>;

/** Stop a task: its job was cancelled, or the service gave it to someone else. Nothing more is reported for it. */
export const CancelTask = z.strictObject({
  type: z.literal("cancel"),
  taskId: TaskId,
  reason: z.string().max(500),
});
export type CancelTask = z.infer<typeof CancelTask>;

// ---- agent → service -------------------------------------------------------

/** The agent has free slots (after a reconnect, say); the service decides how many tasks to send. */
export const RequestWork = z.strictObject({ type: z.literal("request-work") });
export type RequestWork = z.infer<typeof RequestWork>;

/**
 * Hercules' attribute types, from the derivation's attributes: `requireFailure` (must-fail: a
 * success is the failure), `ignoreFailure` (may-fail), `buildDependenciesOnly` or
 * `phases = ["nobuildPhase"]` (dependencies-only: its inputs are built, it is not), `isEffect`
 * (effect: run after the job's builds, docs/effects.md).
 */
export const AttributeType = z.enum(["regular", "must-fail", "may-fail", "dependencies-only", "effect"]);
export type AttributeType = z.infer<typeof AttributeType>;

/** A top-level (or `recurseForDerivations`) attribute that evaluated to a derivation. */
export const AttributeEvent = z.strictObject({
  kind: z.literal("attribute"),
  path: AttributePath,
  drvPath: DrvPath,
  attributeType: AttributeType,
  /**
   * False when every output is already valid locally or in a substituter: nothing to build.
   * For `dependencies-only` and `effect` (never built themselves): whether an input needs building.
   */
  needsBuild: z.boolean(),
  /** For an effect: its derivation's system (it runs on an agent of that system). */
  system: SystemName.optional(),
});

/** An attribute whose evaluation failed; the other attributes are still reported. */
export const AttributeErrorEvent = z.strictObject({
  kind: z.literal("attribute-error"),
  path: AttributePath,
  message: z.string().min(1).max(8000),
});

/** A derivation of the closure that needs building; sent inputs before dependents. */
export const DerivationEvent = z.strictObject({
  kind: z.literal("derivation"),
  drvPath: DrvPath,
  system: SystemName,
  requiredFeatures: z.array(FeatureName).max(64),
  /** Only inputs that need building themselves. */
  inputDrvs: z.array(DrvPath).max(4096),
  outputs: z.record(z.string().min(1).max(128), StorePath),
  /**
   * A derivation with more inputs than fit in one frame comes as `count` events, each with a
   * share of `inputDrvs`; it is not built before every part has arrived.
   */
  part: z
    .strictObject({ index: z.number().int().min(0), count: z.number().int().min(2).max(1000) })
    .refine((p) => p.index < p.count, "part.index must be below part.count")
    .optional(),
  /**
   * Where a builder gets what it needs besides the outputs of `inputDrvs`: one need for the
   * `.drv` closure and one per output of an input that needs no building, each listing the
   * places it can be had (any one will do). Absent: nothing is known, any agent may try.
   */
  sources: z.array(Need).max(256).optional(),
  /**
   * Only `may-fail` attributes of this evaluation need it (`may-fail`), or it is a `must-fail`
   * attribute's own derivation (`must-fail`): its failure alone does not fail the job. Absent:
   * a failure fails the job.
   */
  excused: z.enum(["may-fail", "must-fail"]).optional(),
});

export type AttributeEvent = z.infer<typeof AttributeEvent>;
export type AttributeErrorEvent = z.infer<typeof AttributeErrorEvent>;
export type DerivationEvent = z.infer<typeof DerivationEvent>;

export const EvaluationEvent = z.discriminatedUnion("kind", [AttributeEvent, AttributeErrorEvent, DerivationEvent]);
export type EvaluationEvent = z.infer<typeof EvaluationEvent>;

/** One batch of evaluation events, numbered from 0; answered with `ack`. */
export const EvaluationEvents = z.strictObject({
  type: z.literal("evaluation-events"),
  taskId: TaskId,
  seq: z.number().int().min(0).max(1_000_000),
  events: z.array(EvaluationEvent).min(1).max(1000),
});
export type EvaluationEvents = z.infer<typeof EvaluationEvents>;

/** The evaluation ended: `batches` is how many `evaluation-events` were sent. */
export const EvaluationDone = z.strictObject({
  type: z.literal("evaluation-done"),
  taskId: TaskId,
  batches: z.number().int().min(0).max(1_000_001),
  status: z.enum(["succeeded", "failed"]),
  /** Why the whole evaluation failed (clone failed, no ci.nix, syntax error…). */
  error: z.string().max(8000).optional(),
  /** What became of each cache: the `.drv` closure pushed (or not), caches that could not be asked. */
  caches: z.array(CacheReport).max(128).optional(),
  /** The repository's `herculesCI` handlers, from a task without `handler` (absent: it has no `herculesCI`). */
  config: JobConfig.optional(),
});
export type EvaluationDone = z.infer<typeof EvaluationDone>;

/** A batch of a build's log lines, numbered from 0 per task (at most MAX_LOG_BATCHES of them). */
export const LogBatch = z.strictObject({
  seq: z.number().int().min(0).max(MAX_LOG_BATCHES - 1),
  lines: z.array(z.string().max(4096)).min(1).max(1000),
});
export type LogBatch = z.infer<typeof LogBatch>;

export const BuildLog = z.strictObject({
  type: z.literal("build-log"),
  taskId: TaskId,
  ...LogBatch.shape,
});
export type BuildLog = z.infer<typeof BuildLog>;

/**
 * Nix built it and the agent now pushes its outputs to the caches: the agent's Nix is free, so
 * the service frees the build's slot while keeping its lease; `build-result` still ends it, once
 * the pushes are done (docs/protocol.md, `build-pushing`). Sent at most once per task, only when
 * the agent has a cache to push to.
 */
export const BuildPushing = z.strictObject({
  type: z.literal("build-pushing"),
  taskId: TaskId,
  drvPath: DrvPath,
});
export type BuildPushing = z.infer<typeof BuildPushing>;

/**
 * How a build ended: `succeeded`; `failed` (the builder failed: a cached failure until a
 * rebuild is asked for); `exceptional` (something else broke: retried on another attempt).
 */
export const BuildResult = z.strictObject({
  type: z.literal("build-result"),
  taskId: TaskId,
  drvPath: DrvPath,
  status: z.enum(["succeeded", "failed", "exceptional"]),
  outputs: z.record(z.string().min(1).max(128), StorePath).optional(),
  exitCode: z.number().int().optional(),
  /** The last lines of the log, for the failure summary. */
  logTail: z.array(z.string().max(4096)).max(50).optional(),
  /**
   * The log's last batch, not sent as a `build-log` (a short build's whole log): stored before
   * the result is applied, as that frame would have been (docs/protocol.md, `build-result`).
   */
  log: LogBatch.optional(),
  error: z.string().max(8000).optional(),
  /** After a success: the output closure pushed to each push cache, or why not (Hercules' `Pushed {cache}`). */
  caches: z.array(CacheReport).max(64).optional(),
  /**
   * After a success: outputs (and paths of their closure) uploaded to the built-in cache and not
   * yet published. The service checks and publishes them as `cache-upload-complete` would, before
   * it settles the build, and their verdict is the `nimbus` cache report (docs/cache.md).
   */
  publish: z.array(UploadedPath).min(1).max(CACHE_PUBLISH_WITH_RESULT).optional(),
});
export type BuildResult = z.infer<typeof BuildResult>;

/** A batch of an effect's log lines, numbered from 0 per task (as `build-log`). */
export const EffectLog = z.strictObject({
  type: z.literal("effect-log"),
  taskId: TaskId,
  seq: z.number().int().min(0),
  lines: z.array(z.string().max(4096)).min(1).max(1000),
});
export type EffectLog = z.infer<typeof EffectLog>;

/**
 * How an effect ended: `succeeded` (its builder exited 0), `failed` (it exited otherwise, timed
 * out, or was refused a secret or a mount: `error` says which), `exceptional` (something else
 * broke, such as its inputs could not be had: tried again).
 */
export const EffectResult = z.strictObject({
  type: z.literal("effect-result"),
  taskId: TaskId,
  status: z.enum(["succeeded", "failed", "exceptional"]),
  exitCode: z.number().int().optional(),
  logTail: z.array(z.string().max(4096)).max(50).optional(),
  error: z.string().max(8000).optional(),
});
export type EffectResult = z.infer<typeof EffectResult>;
