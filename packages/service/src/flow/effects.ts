/**
 * Effects (docs/effects.md): recorded when the evaluation reports them, started once every
 * build of their job succeeded and their turn came — after the effects of earlier jobs on the
 * same branch, one at a time per line (repository, ref, attribute) — and their results folded
 * into the job's verdict. Every step is a conditional write; the sweeper goes round again.
 */
import type { AttributeEvent, JobStatus } from "@nimbus/protocol";
import { createEffect, earlierJobEvaluating, enqueueEffect, isFinishedEffect, jobEffects, lineEffects, lockLine, moveEffect, readyEffects, unlockLine } from "../storage/effects.ts";
import type { EffectItem, JobItem } from "../storage/items.ts";
import { attributeKey } from "../storage/keys.ts";
import { addJobEffect, getJob } from "../storage/jobs.ts";
import type { WorkNotes } from "./new-work.ts";

/** A queued effect whose message may have been lost is sent again after this long. */
const REQUEUE_AFTER_MS = 2 * 60_000;

/** Effects of one repository, ref and attribute run one at a time, in job order. */
export const effectLine = (job: Pick<JobItem, "repository" | "ref">, attribute: string) => `${job.repository}#${job.ref ?? ""}#${attribute}`;
const effectKey = (e: Pick<EffectItem, "jobId" | "attribute">) => ({ jobId: e.jobId, attribute: e.attribute });
const holderOf = (e: Pick<EffectItem, "jobId" | "attribute">) => `${e.jobId}#${e.attribute}`;

/** Whether the job's ref is its repository's default branch (secrets' `isDefaultBranch`). */
export const isDefaultBranch = (job: Pick<JobItem, "ref" | "defaultBranch">) =>
  job.defaultBranch !== undefined && job.ref === `refs/heads/${job.defaultBranch}`;

/**
 * An effect attribute of the evaluation: recorded once, `pending` until the builds are done — or
 * `skipped` at once for a fork's job, which runs no effects.
 */
export async function recordEffect(job: JobItem, event: AttributeEvent, now: Date): Promise<void> {
  const attribute = attributeKey(event.path);
  const at = now.toISOString();
  const lineKey = effectLine(job, attribute);
  const created = await createEffect({
    jobId: job.jobId,
    attribute,
    path: event.path,
    drvPath: event.drvPath,
    ...(event.system ? { system: event.system } : {}),
    lineKey,
    order: `${job.createdAt}#${job.jobId}`,
    attempt: 0,
    createdAt: at,
    updatedAt: at,
    ...(job.untrusted
      ? { status: "skipped", error: "a fork's commit runs no effects", finishedAt: at }
      : { status: "pending", activeLine: lineKey }),
  });
  if (created) await addJobEffect(job.jobId);
}

/**
 * The job's verdict once its derivations are settled (`outcome`), with its effects: undefined
 * while effects still run (they are started now if the builds succeeded); a failed effect fails
 * the job. When the builds did not all succeed, effects that never started are skipped.
 */
export async function effectsOutcome(job: JobItem, outcome: JobStatus, now: Date, work?: WorkNotes): Promise<JobStatus | undefined> {
  if (!job.effectCount) return outcome;
  const effects = await jobEffects(job.jobId);
  if (outcome !== "succeeded") {
    const why = outcome === "cancelled" ? "its job was cancelled" : "its job's builds did not all succeed";
    for (const e of effects.filter((e) => e.status === "pending" || e.status === "waiting")) {
      await moveEffect(effectKey(e), { from: ["pending", "waiting"], to: "skipped", set: { error: why, finishedAt: now.toISOString() } }, now);
    }
    await startReadyEffects(now, work);
    return outcome;
  }
  const unfinished = effects.filter((e) => !isFinishedEffect(e.status));
  if (unfinished.length === 0) return effects.some((e) => e.status === "failed") ? "failed" : outcome;
  for (const e of unfinished.filter((e) => e.status === "pending")) {
    await moveEffect(effectKey(e), { from: ["pending"], to: "waiting" }, now);
  }
  await startReadyEffects(now, work);
  return undefined;
}

/**
 * Starts every effect whose turn has come (the byReady index: builds done, not yet running), and
 * sends again those queued so long their message may be lost. Returns how many it queued.
 */
export async function startReadyEffects(now: Date, work?: WorkNotes): Promise<number> {
  let queued = 0;
  for (const effect of await readyEffects()) {
    if (effect.status === "queued") {
      if (effect.queuedAt && now.getTime() - Date.parse(effect.queuedAt) > REQUEUE_AFTER_MS) {
        await enqueueEffect(effect);
        work?.addEffect();
      }
    } else if (effect.status === "waiting" && (await takeTurn(effect, now))) {
      queued++;
      work?.addEffect();
    }
  }
  return queued;
}

/**
 * waiting → queued, if its turn has come: no earlier job of the branch still evaluating (its
 * effects are not known yet), no earlier effect of the line unfinished, and the line's lock taken.
 */
async function takeTurn(effect: EffectItem, now: Date): Promise<boolean> {
  const job = await getJob(effect.jobId);
  if (!job) return false;
  if (await earlierJobEvaluating(job)) return false;
  const line = await lineEffects(effect.lineKey);
  const blocked = line.some((other) => holderOf(other) !== holderOf(effect) && (other.order < effect.order || other.status === "queued" || other.status === "running"));
  if (blocked) return false;
  if (!(await lockLine(effect.lineKey, holderOf(effect), now))) return false;
  const moved = await moveEffect(effectKey(effect), { from: ["waiting"], to: "queued", set: { queuedAt: now.toISOString() } }, now);
  if (!moved) {
    await unlockLine(effect.lineKey, holderOf(effect));
    return false;
  }
  await enqueueEffect(moved);
  return true;
}

/** An effect ended (or was given up): its line is free for the next, and its job may finish. */
export async function effectEnded(effect: EffectItem, now: Date, work?: WorkNotes): Promise<void> {
  await unlockLine(effect.lineKey, holderOf(effect));
  work?.addChangedJob(effect.jobId);
  await startReadyEffects(now, work);
}

/** A cancelled job's effects: those not started are cancelled; the running ones' sessions are told by the caller. */
export async function cancelJobEffects(jobId: string, now: Date, work?: WorkNotes): Promise<EffectItem[]> {
  const running: EffectItem[] = [];
  for (const e of await jobEffects(jobId)) {
    if (isFinishedEffect(e.status)) continue;
    const moved = await moveEffect(effectKey(e), { from: ["pending", "waiting", "queued", "running"], to: "cancelled", set: { error: "its job was cancelled", finishedAt: now.toISOString() } }, now);
    if (!moved) continue;
    if (e.status === "queued" || e.status === "running") await effectEnded(moved, now, work);
    if (e.status === "running") running.push(e);
  }
  return running;
}
