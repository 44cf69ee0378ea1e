/**
 * Evaluation events into the job and the shared graph (docs/architecture.md, "push → job"):
 * derivations are registered, attributes and their errors recorded, and the evaluation is
 * complete once every batch the agent announced is in.
 */
import { countAttributeErrors } from "../storage/job-attributes.ts";
import { putCachedJobDerivation } from "../storage/job-derivations.ts";
import { batchesSeenOf, completeEvaluation, getJob } from "../storage/jobs.ts";
import { attributeKey } from "../storage/keys.ts";
import type { JobAttributeItem, JobItem } from "../storage/items.ts";
import { batchesSeenCount } from "@nimbus/core";
import type { AttributeEvent, AttributeType, EvaluationEvent } from "@nimbus/protocol";
import pMap from "p-map";
import { recordEffect } from "./effects.ts";
import { finishJobIfDone } from "./job-finish.ts";
import type { WorkNotes } from "./new-work.ts";
import { registerBatch } from "./register-batch.ts";

/** Attribute events' follow-ups (effects, cached derivations) of one batch at once. */
const FOLLOW_UPS_AT_ONCE = 8;

/**
 * Records a batch's events, the derivations together (flow/register-batch.ts) with the
 * attribute rows; false when one must come again later (flow/register-derivation.ts `Registration`).
 */
export async function recordEvents(job: JobItem, events: readonly EvaluationEvent[], work: WorkNotes, now: Date): Promise<boolean> {
  const derivations = events.filter((event) => event.kind === "derivation");
  const attributes = events.filter((event) => event.kind !== "derivation");
  const rows = attributes.map(
    (event): JobAttributeItem => ({
      jobId: job.jobId,
      attribute: attributeKey(event.path),
      path: event.path,
      ...(event.kind === "attribute"
        ? { drvPath: event.drvPath, attributeType: event.attributeType, needsBuild: event.needsBuild }
        : { error: event.message, errorJobId: job.jobId }),
    }),
  );
  const outcomes = await registerBatch(job.jobId, derivations, rows, { rebuildFailures: job.trigger.rebuildFailures ?? false }, work, now);
  await pMap(attributes, (event) => (event.kind === "attribute" ? attributeFollowUps(job, event, now) : undefined), { concurrency: FOLLOW_UPS_AT_ONCE });
  return outcomes.every((outcome) => outcome !== "later");
}

/** What an attribute needs besides its row: its effect, or its outputs found valid. */
async function attributeFollowUps(job: JobItem, event: AttributeEvent, now: Date): Promise<void> {
  if (event.attributeType === "effect") await recordEffect(job, event, now);
  // Outputs already valid: the job shows it, and there is nothing to build. Effects and
  // dependencies-only attributes are never built themselves (docs/effects.md).
  if (!event.needsBuild && isBuilt(event.attributeType)) {
    const excused = event.attributeType === "must-fail" || event.attributeType === "may-fail" ? event.attributeType : undefined;
    await putCachedJobDerivation(job.jobId, event.drvPath, excused);
  }
}

/** Whether an attribute of this type has its own derivation built (effects and dependencies-only attributes do not). */
export const isBuilt = (type: AttributeType): boolean => type !== "effect" && type !== "dependencies-only";

/**
 * running → succeeded when `batches` is known and all of them are recorded; the job then builds.
 * `known`: the job as a write of this invocation returned it (else it is read).
 */
export async function completeEvaluationIfAllIn(jobId: string, now: Date, work?: WorkNotes, known?: JobItem): Promise<void> {
  const job = known ?? (await getJob(jobId));
  const evaluation = job?.evaluation;
  if (!job || evaluation?.status !== "running" || evaluation.batches === undefined) return;
  if (batchesSeenCount(batchesSeenOf(evaluation)) < evaluation.batches) return;
  if (await completeEvaluation(jobId, evaluation.taskId, await countAttributeErrors(jobId), now)) await finishJobIfDone(jobId, now, work);
}
