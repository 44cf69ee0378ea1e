/**
 * Evaluation events into the job and the shared graph (docs/architecture.md, "push → job"):
 * derivations are registered, attributes and their errors recorded, and the evaluation is
 * complete once every batch the agent announced is in.
 */
import { countAttributeErrors, putJobAttribute } from "../storage/job-attributes.ts";
import { putCachedJobDerivation } from "../storage/job-derivations.ts";
import { completeEvaluation, getJob } from "../storage/jobs.ts";
import { attributeKey } from "../storage/keys.ts";
import type { JobItem } from "../storage/items.ts";
import type { AttributeType, EvaluationEvent } from "@nimbus/protocol";
import pMap from "p-map";
import { recordEffect } from "./effects.ts";
import { finishJobIfDone } from "./job-finish.ts";
import type { WorkNotes } from "./new-work.ts";
import { registerDerivation, type Registration } from "./register-derivation.ts";

/** Events of one batch at once, at most this many: they do not depend on their order (flow/register-derivation.ts). */
const EVENTS_AT_ONCE = 8;

/** Records a batch's events; false when one must come again later (flow/register-derivation.ts `Registration`). */
export async function recordEvents(job: JobItem, events: readonly EvaluationEvent[], work: WorkNotes, now: Date): Promise<boolean> {
  const outcomes = await pMap(events, (event) => recordEvent(job, event, work, now), { concurrency: EVENTS_AT_ONCE });
  return outcomes.every((outcome) => outcome !== "later");
}

async function recordEvent(job: JobItem, event: EvaluationEvent, work: WorkNotes, now: Date): Promise<Registration | void> {
  switch (event.kind) {
    case "derivation":
      return registerDerivation(job.jobId, event, { rebuildFailures: job.trigger.rebuildFailures ?? false }, work, now);
    case "attribute":
    case "attribute-error": {
      await putJobAttribute({
        jobId: job.jobId,
        attribute: attributeKey(event.path),
        path: event.path,
        ...(event.kind === "attribute"
          ? { drvPath: event.drvPath, attributeType: event.attributeType, needsBuild: event.needsBuild }
          : { error: event.message, errorJobId: job.jobId }),
      });
      if (event.kind === "attribute" && event.attributeType === "effect") await recordEffect(job, event, now);
      // Outputs already valid: the job shows it, and there is nothing to build. Effects and
      // dependencies-only attributes are never built themselves (docs/effects.md).
      if (event.kind === "attribute" && !event.needsBuild && isBuilt(event.attributeType)) {
        const excused = event.attributeType === "must-fail" || event.attributeType === "may-fail" ? event.attributeType : undefined;
        await putCachedJobDerivation(job.jobId, event.drvPath, excused);
      }
    }
  }
}

/** Whether an attribute of this type has its own derivation built (effects and dependencies-only attributes do not). */
export const isBuilt = (type: AttributeType): boolean => type !== "effect" && type !== "dependencies-only";

/** running → succeeded when `batches` is known and all of them are recorded; the job then builds. */
export async function completeEvaluationIfAllIn(jobId: string, now: Date, work?: WorkNotes): Promise<void> {
  const job = await getJob(jobId);
  const evaluation = job?.evaluation;
  if (!job || evaluation?.status !== "running" || evaluation.batches === undefined) return;
  if ((evaluation.batchesSeen?.size ?? 0) < evaluation.batches) return;
  if (await completeEvaluation(jobId, evaluation.taskId, await countAttributeErrors(jobId), now)) await finishJobIfDone(jobId, now, work);
}
