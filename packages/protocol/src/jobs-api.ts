import * as z from "zod";
import { FeatureName, SystemName } from "./agent-info.ts";
import { AttributePath, DrvPath, StorePath } from "./nix-names.ts";
import { Source } from "./sources.ts";

/** Where a derivation stands; shared by every job that needs it. */
export const DerivationStatus = z.enum([
  "waiting", // for input derivations
  "queued", // ready, in the queue of its (system, features)
  "building",
  "succeeded",
  "failed", // a cached failure until a rebuild is asked for
  "dependency-failed",
  "cancelled",
  "cached", // outputs already valid: never built
]);
export type DerivationStatus = z.infer<typeof DerivationStatus>;

/** `held`: a fork's pull request waiting for someone with write access to approve it (docs/github.md). */
export const JobStatus = z.enum(["held", "evaluating", "building", "succeeded", "failed", "cancelled"]);
export type JobStatus = z.infer<typeof JobStatus>;

export const EvaluationStatus = z.enum(["queued", "running", "succeeded", "failed"]);

export const Trigger = z.strictObject({
  event: z.enum(["push", "pull_request", "rerun"]),
  deliveryId: z.string().optional(),
  sender: z.string().optional(),
  pullRequest: z.number().int().optional(),
  rerunOf: z.string().optional(),
  rebuildFailures: z.boolean().optional(),
  /** A fork's pull request: who approved its commit (docs/github.md). */
  approvedBy: z.string().optional(),
});
export type Trigger = z.infer<typeof Trigger>;

export const BuilderView = z.strictObject({
  hostname: z.string(),
  sessionId: z.string().optional(),
  connectionId: z.string(),
  labels: z.record(z.string(), z.json()),
});

export const FailureView = z.strictObject({
  drvPath: DrvPath,
  status: z.enum(["failed", "dependency-failed"]),
  /** One line: why, as a user reads it. */
  reason: z.string(),
  exitCode: z.number().int().optional(),
  logTail: z.array(z.string()).optional(),
  /** For dependency-failed: the failed input that caused it. */
  dependency: DrvPath.optional(),
});
export type FailureView = z.infer<typeof FailureView>;

export const AttributeView = z.strictObject({
  path: AttributePath,
  drvPath: DrvPath.optional(),
  status: z.union([DerivationStatus, z.literal("error")]),
  error: z.string().optional(),
});
export type AttributeView = z.infer<typeof AttributeView>;

export const JobView = z.strictObject({
  id: z.string(),
  repository: z.string(),
  ref: z.string().optional(),
  commit: z.string(),
  cloneUrl: z.string(),
  trigger: Trigger,
  status: JobStatus,
  /** A fork's commit: no secrets, no effects (docs/github.md). */
  untrusted: z.boolean().optional(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().optional(),
  evaluation: z.strictObject({
    status: EvaluationStatus,
    error: z.string().optional(),
    agent: z.string().optional(),
    /** Caches the evaluating agent could not ask or push the `.drv` files to (one line each). */
    cacheProblems: z.array(z.string()).optional(),
  }),
  counts: z.partialRecord(DerivationStatus, z.number().int()),
  attributes: z.array(AttributeView),
  /** Failed and dependency-failed derivations (the first 100), and attribute errors. */
  failures: z.array(FailureView),
});
export type JobView = z.infer<typeof JobView>;

export const JobSummary = JobView.omit({ attributes: true, failures: true, counts: true });
export type JobSummary = z.infer<typeof JobSummary>;
export const JobList = z.strictObject({ jobs: z.array(JobSummary), cursor: z.string().optional() });
export type JobList = z.infer<typeof JobList>;

export const JobDerivationView = z.strictObject({
  drvPath: DrvPath,
  status: DerivationStatus,
  system: SystemName,
  requiredFeatures: z.array(FeatureName),
  outputs: z.record(z.string(), StorePath),
  builtBy: BuilderView.optional(),
  failure: FailureView.optional(),
  /** For queued derivations no connected agent can build. */
  waitingForAgent: z.strictObject({ system: z.string(), features: z.array(z.string()) }).optional(),
  /** For queued derivations that agents could build but none can obtain its inputs: why (e.g. "inputs only on agent builder-1; no shared cache"). */
  waitingForInputs: z.strictObject({ reason: z.string() }).optional(),
  /** Where its outputs are, once built: the builder's store and the caches they were pushed to. */
  sources: z.array(Source).optional(),
  /** Pushes of its outputs that failed (one line each). */
  cacheProblems: z.array(z.string()).optional(),
});
export type JobDerivationView = z.infer<typeof JobDerivationView>;

export const DerivationPage = z.strictObject({
  derivations: z.array(JobDerivationView),
  cursor: z.string().optional(),
});
export type DerivationPage = z.infer<typeof DerivationPage>;

export const DerivationLog = z.strictObject({
  drvPath: DrvPath,
  lines: z.array(z.string()),
  truncated: z.boolean(),
});
export type DerivationLog = z.infer<typeof DerivationLog>;

/** What `POST /webhooks/github` answers. */
export const WebhookAccepted = z.strictObject({ jobId: z.string(), redelivery: z.boolean() });
export type WebhookAccepted = z.infer<typeof WebhookAccepted>;
export const WebhookIgnored = z.strictObject({ ignored: z.string() });
export type WebhookIgnored = z.infer<typeof WebhookIgnored>;
/** A webhook that changed jobs without starting one (an approval, a closed pull request, an installation change). */
export const WebhookActed = z.strictObject({
  action: z.enum(["approve-fork", "cancel-pull-request", "installation"]),
  jobIds: z.array(z.string()),
  /** Why nothing (or less) happened, when it did not. */
  note: z.string().optional(),
});
export type WebhookActed = z.infer<typeof WebhookActed>;
