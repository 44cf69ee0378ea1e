/**
 * The Effects table's writes (docs/effects.md): each a conditional move of one effect, so a
 * duplicate or late message changes nothing; and the line locks that keep a line's effects one
 * at a time.
 */
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { sqs } from "../platform/aws-clients.ts";
import { queueUrl } from "../platform/linked-resources.ts";
import { allOf } from "./condition-terms.ts";
import type { EffectItem, EffectStatus, JobItem } from "./items.ts";
import { indexShard, indexShards, SHARD } from "./keys.ts";
import { firstOfShards } from "./index-walk.ts";
import type { EffectMessage } from "./queue-messages.ts";
import { EffectLines, Effects, Jobs } from "./tables.ts";
import { hexDigest } from "../platform/hex-digest.ts";

export const EFFECT_QUEUE = "EffectQueue" as const;
export const effectQueueUrl = () => queueUrl(EFFECT_QUEUE);

export const getEffect = (jobId: string, attribute: string): Promise<EffectItem | undefined> => Effects.get({ jobId, attribute });

/** Records an effect once (a second evaluation batch with it changes nothing); whether this call did. */
export const createEffect = (item: EffectItem): Promise<boolean> => Effects.put(item, { expression: "attribute_not_exists(jobId)" });

/** Every effect of a job, read consistently. */
export const jobEffects = (jobId: string): Promise<EffectItem[]> =>
  Effects.query({ KeyConditionExpression: "jobId = :job", ExpressionAttributeValues: { ":job": jobId }, ConsistentRead: true });

/** The unfinished effects of a line, in job order (the byLine index). */
export const lineEffects = (lineKey: string): Promise<EffectItem[]> =>
  Effects.query({ IndexName: "byLine", KeyConditionExpression: "activeLine = :line", ExpressionAttributeValues: { ":line": lineKey } });

/** Up to 100 effects whose builds are done and that wait for their turn or an agent, oldest job first (the byReady index). */
export const readyEffects = (): Promise<EffectItem[]> =>
  firstOfShards(indexShards(SHARD.effectReady), 100, (effect) => effect.order, (shard, limit) =>
    Effects.firstPage({ IndexName: "byReady", KeyConditionExpression: "readyShard = :r", ExpressionAttributeValues: { ":r": shard }, Limit: limit }),
  );

const FINISHED: readonly EffectStatus[] = ["succeeded", "failed", "cancelled", "skipped"];
export const isFinishedEffect = (status: EffectStatus) => FINISHED.includes(status);

/**
 * Moves an effect from one of `from` to `to`, setting and removing fields, conditional on the
 * status (and `condition`); the index shards follow the status. The item after, or undefined.
 */
export async function moveEffect(
  key: { jobId: string; attribute: string },
  move: { from: readonly EffectStatus[]; to: EffectStatus; set?: Record<string, unknown>; remove?: string[]; condition?: { expression: string; values: Record<string, unknown> }; addAttempt?: boolean },
  now: Date,
): Promise<EffectItem | undefined> {
  const set: Record<string, unknown> = { ...move.set, status: move.to, updatedAt: now.toISOString() };
  const remove = new Set(move.remove ?? []);
  if (move.to === "waiting" || move.to === "queued") set.readyShard = indexShard(SHARD.effectReady, `${key.jobId}#${key.attribute}`);
  else remove.add("readyShard");
  if (isFinishedEffect(move.to)) remove.add("activeLine");
  const names: Record<string, string> = { "#status": "status" };
  const values: Record<string, unknown> = { ...move.condition?.values };
  const sets = Object.entries(set).map(([field, value], i) => {
    names[`#s${i}`] = field;
    values[`:s${i}`] = value;
    return `#s${i} = :s${i}`;
  });
  const removes = [...remove].map((field, i) => {
    names[`#r${i}`] = field;
    return `#r${i}`;
  });
  move.from.forEach((status, i) => (values[`:from${i}`] = status));
  if (move.addAttempt) values[":one"] = 1;
  return Effects.updateReturning(
    key,
    {
      UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}${move.addAttempt ? " ADD attempt :one" : ""}`,
      ConditionExpression: allOf(`#status IN (${move.from.map((_, i) => `:from${i}`).join(", ")})`, ...(move.condition ? [move.condition.expression] : [])),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
    "ALL_NEW",
  );
}

/** Takes a line's lock for an effect (or keeps it, if that effect holds it already); whether it holds it now. */
export const lockLine = (lineKey: string, holder: string, now: Date): Promise<boolean> =>
  EffectLines.put({ lineKey, holder, since: now.toISOString() }, { expression: "attribute_not_exists(lineKey) OR holder = :holder", values: { ":holder": holder } });

/** Gives a line's lock up, if `holder` holds it. */
export const unlockLine = (lineKey: string, holder: string): Promise<boolean> =>
  EffectLines.delete({ lineKey }, { expression: "holder = :holder", values: { ":holder": holder } });

/** Puts an effect on the Effects queue: one group per line (its order kept), deduplicated per attempt. */
export async function enqueueEffect(effect: Pick<EffectItem, "jobId" | "attribute" | "attempt" | "lineKey">): Promise<void> {
  const body: EffectMessage = { jobId: effect.jobId, attribute: effect.attribute, attempt: effect.attempt };
  const digest = hexDigest(`${effect.jobId}#${effect.attribute}`, 32);
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: effectQueueUrl(),
      MessageBody: JSON.stringify(body),
      MessageGroupId: hexDigest(effect.lineKey),
      MessageDeduplicationId: `${digest}-${effect.attempt}-${Date.now()}`,
    }),
  );
}

/**
 * Whether a job of the same repository and ref made before `job` is still evaluating: its effects
 * are not known yet, so `job`'s wait (Hercules: effects run after earlier jobs' builds). Reads the
 * running jobs (the byActivity index), never the whole table.
 */
export async function earlierJobEvaluating(job: Pick<JobItem, "jobId" | "repository" | "ref" | "createdAt">): Promise<boolean> {
  const order = `${job.createdAt}#${job.jobId}`;
  for (const shard of indexShards(SHARD.activeJob)) {
    for await (const page of Jobs.pages({ IndexName: "byActivity", KeyConditionExpression: "activeShard = :a", ExpressionAttributeValues: { ":a": shard } })) {
      const found = page.items.some(
        (other) => other.repository === job.repository && other.ref === job.ref && `${other.createdAt}#${other.jobId}` < order && other.status === "evaluating",
      );
      if (found) return true;
    }
  }
  return false;
}
