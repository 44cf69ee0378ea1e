/**
 * The effect task (docs/effects.md, docs/protocol.md `effect`): an agent of the effect's system
 * runs an effect whose turn has come. Its work waits in the Effects queue; its lease is the
 * effect's `taskId` and `sessionId`, and only that session can end it.
 */
import { EffectTask, type EffectLog, type EffectResult } from "@nimbus/protocol";
import { z } from "zod";
import { putLogChunk } from "../../storage/build-logs.ts";
import { EFFECT_QUEUE, effectQueueUrl, enqueueEffect, getEffect, moveEffect } from "../../storage/effects.ts";
import type { EffectItem, JobItem } from "../../storage/items.ts";
import { getJob } from "../../storage/jobs.ts";
import { logChunk } from "../../storage/keys.ts";
import { EffectMessage, parseMessageBody } from "../../storage/queue-messages.ts";
import { releaseTask } from "../../storage/sessions.ts";
import { effectEnded, isDefaultBranch } from "../effects.ts";
import { finishJobIfDone } from "../job-finish.ts";
import { answer, unknownTask, type ReportInput, type TaskAnswer, type TaskKind } from "./task-kind.ts";
import { hexDigest } from "../../platform/hex-digest.ts";

/** What a session records of an effect it holds. */
export const EffectRecord = z.strictObject({
  kind: z.literal("effect"),
  jobId: z.string(),
  attribute: z.string(),
  attempt: z.number(),
  startedAt: z.string(),
});
export type EffectRecord = z.infer<typeof EffectRecord>;

/** An effect tried this many times with an agent's error (not its own failure) fails. */
const MAX_ATTEMPTS = 3;

/** An effect's task id: its job, attribute and attempt. */
export const effectTaskId = (jobId: string, attribute: string, attempt: number) => `fx-${hexDigest(`${jobId}#${attribute}`, 16)}-${attempt}`;
/** Where an effect's log is kept (the BuildLogs table, beside builds' logs). */
export const effectLogKey = (jobId: string, attribute: string) => `effect:${jobId}:${attribute}`;

const key = (e: Pick<EffectItem, "jobId" | "attribute">) => ({ jobId: e.jobId, attribute: e.attribute });
const notHeld = (taskId: string) => unknownTask(taskId, "is not an effect this agent holds");

export const effectTaskMessage = (job: JobItem, effect: EffectItem, taskId: string): EffectTask => ({
  type: "effect",
  taskId,
  jobId: job.jobId,
  attribute: effect.path,
  drvPath: effect.drvPath,
  repository: job.repository,
  ref: job.ref ?? "",
  isDefaultBranch: isDefaultBranch(job),
});

/** The effect this session runs under `taskId`, if it still does. */
async function heldEffect(record: EffectRecord | undefined, taskId: string, sessionId: string): Promise<EffectItem | undefined> {
  if (!record) return undefined;
  const effect = await getEffect(record.jobId, record.attribute);
  return effect?.status === "running" && effect.taskId === taskId && effect.sessionId === sessionId ? effect : undefined;
}

async function effectLog({ message, held, session }: ReportInput<EffectLog, EffectRecord>): Promise<TaskAnswer> {
  if (!held || !(await heldEffect(held, message.taskId, session.sessionId))) return answer(false, notHeld(message.taskId));
  await putLogChunk({ drvPath: effectLogKey(held.jobId, held.attribute), chunk: logChunk(held.attempt, message.seq), lines: message.lines });
  return answer(false);
}

/**
 * How an effect ended: recorded once, from the session running it; the line is freed and the
 * job may finish. The slot is given back after the effect moved, as an evaluation's is: a
 * handler that dies in between leaves a slot the sweeper frees (`holds` says no), never a
 * running effect its session no longer holds.
 */
async function effectResult({ session, message, held, now, work }: ReportInput<EffectResult, EffectRecord>): Promise<TaskAnswer> {
  const effect = await heldEffect(held, message.taskId, session.sessionId);
  if (!effect) {
    const released = await releaseTask(session.sessionId, message.taskId);
    return answer(true, released && held ? { type: "result-ack", taskId: message.taskId } : notHeld(message.taskId));
  }
  const running = { expression: "taskId = :task", values: { ":task": message.taskId } };
  const at = now.toISOString();
  let ended: EffectItem | undefined;
  if (message.status === "exceptional" && effect.attempt + 1 < MAX_ATTEMPTS) {
    // The agent, not the effect, failed: again, on any agent.
    const again = await moveEffect(key(effect), { from: ["running"], to: "queued", set: { queuedAt: at, error: message.error ?? "agent error" }, remove: ["taskId", "sessionId"], condition: running, addAttempt: true }, now);
    if (again) {
      await enqueueEffect(again);
      work.addEffect();
    }
  } else {
    const to = message.status === "succeeded" ? "succeeded" : "failed";
    ended = await moveEffect(
      key(effect),
      {
        from: ["running"],
        to,
        set: {
          finishedAt: at,
          ...(message.exitCode !== undefined ? { exitCode: message.exitCode } : {}),
          ...(message.logTail ? { logTail: message.logTail } : {}),
          ...(message.error !== undefined ? { error: message.error } : {}),
        },
        condition: running,
      },
      now,
    );
  }
  await releaseTask(session.sessionId, message.taskId);
  if (ended) {
    await effectEnded(ended, now, work);
    await finishJobIfDone(ended.jobId, now, work);
  }
  work.addChangedJob(effect.jobId);
  return answer(true, { type: "result-ack", taskId: message.taskId });
}

export const effectKind = {
  kind: "effect",
  message: EffectTask,
  record: EffectRecord,
  // Rank 1, beside the builds: an effect's turn comes only once its job's builds are done.
  sources: async () => [{ kind: "effect", queue: EFFECT_QUEUE, rank: 1, rare: true }],
  queueUrl: async () => effectQueueUrl(),
  forgetQueue: () => {},
  async claim(message, now) {
    const { jobId, attribute, attempt } = parseMessageBody(EFFECT_QUEUE, message, EffectMessage);
    const effect = await getEffect(jobId, attribute);
    if (!effect || effect.status !== "queued" || effect.attempt !== attempt) return undefined;
    const job = await getJob(jobId);
    if (!job) return undefined;
    const taskId = effectTaskId(jobId, attribute, attempt);
    return {
      taskId,
      record: { kind: "effect", jobId, attribute, attempt, startedAt: now.toISOString() },
      // Any agent of its system (core matching.ts); it fetches the derivation from the caches if need be.
      ...(effect.system ? { needs: { system: effect.system, requiredFeatures: [], needs: [] } } : {}),
      async lease(holder) {
        const leased = await moveEffect(
          key(effect),
          { from: ["queued"], to: "running", set: { taskId, sessionId: holder.sessionId, agent: holder.agent.hostname, startedAt: now.toISOString() }, condition: { expression: "attempt = :attempt", values: { ":attempt": attempt } } },
          now,
        );
        return leased ? effectTaskMessage(job, leased, taskId) : undefined;
      },
    };
  },
  holds: async (taskId, record, holder) => (await heldEffect(record, taskId, holder.sessionId)) !== undefined,
  // Leased while this session runs it; pending while this attempt waits on the effect queue.
  async standing(taskId, record, holder) {
    const effect = await getEffect(record.jobId, record.attribute);
    if (effect?.status === "running" && effect.taskId === taskId && effect.sessionId === holder.sessionId) return "leased";
    if (effect?.status === "queued" && effectTaskId(effect.jobId, effect.attribute, effect.attempt) === taskId) return "pending";
    return "gone";
  },
  async resume(taskId, record, holder) {
    const effect = await heldEffect(record, taskId, holder.sessionId);
    const job = effect ? await getJob(effect.jobId) : undefined;
    return effect && job ? effectTaskMessage(job, effect, taskId) : undefined;
  },
  // The agent went away mid-effect: the effect runs again, on any agent (it holds its line meanwhile).
  async handBack(taskId, record, holder, reason, work) {
    const effect = await heldEffect(record, taskId, holder.sessionId);
    if (!effect) return;
    const now = new Date();
    const again = await moveEffect(
      key(effect),
      { from: ["running"], to: "queued", set: { queuedAt: now.toISOString(), error: reason }, remove: ["taskId", "sessionId"], condition: { expression: "taskId = :task", values: { ":task": taskId } }, addAttempt: true },
      now,
    );
    if (!again) return;
    await enqueueEffect(again);
    work.addEffect();
  },
  reports: { "effect-log": effectLog, "effect-result": effectResult },
} satisfies TaskKind<"effect", EffectRecord, EffectTask>;
