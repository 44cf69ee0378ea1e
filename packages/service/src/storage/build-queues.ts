import { CreateQueueCommand, SendMessageBatchCommand, SendMessageCommand, type SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";
import { buildQueueName, buildStartOf, inputsAtHand, parseQueueKey, type BuiltInput } from "@nimbus/core";
import { sqs } from "../platform/aws-clients.ts";
import { appStage } from "../platform/linked-resources.ts";
import { buildQueuePrefix } from "../platform/resource-specs.ts";
import type { BuildQueueItem, DerivationItem } from "./items.ts";
import { isMissingQueue, type BuildMessage } from "./queue-messages.ts";
import { BuildQueues } from "./tables.ts";
import { hexDigest } from "../platform/hex-digest.ts";

/** Seconds a received build message stays hidden before SQS offers it again. */
const VISIBILITY_TIMEOUT_SECONDS = 60;

// Queue URLs by key, for the life of the Lambda container (CreateQueue is idempotent anyway);
// a lookup under way is shared, so callers at once make one CreateQueue.
const urls = new Map<string, Promise<string>>();

/** The FIFO queue of a (system, features) key, created and registered on first use. */
export function buildQueueUrl(queueKey: string): Promise<string> {
  const cached = urls.get(queueKey);
  if (cached) return cached;
  const url = createBuildQueue(queueKey);
  urls.set(queueKey, url);
  // A failed lookup is not kept: the next caller tries again.
  url.catch(() => urls.get(queueKey) === url && urls.delete(queueKey));
  return url;
}

async function createBuildQueue(queueKey: string): Promise<string> {
  const { app, stage } = appStage();
  const queueName = buildQueueName(buildQueuePrefix(app, stage), queueKey);
  const { system, features } = parseQueueKey(queueKey);
  const item: BuildQueueItem = { queueKey, queueName, system, features, createdAt: new Date().toISOString() };
  const { QueueUrl } = await sqs().send(
    new CreateQueueCommand({ QueueName: queueName, Attributes: { FifoQueue: "true", VisibilityTimeout: String(VISIBILITY_TIMEOUT_SECONDS) } }),
  );
  if (!QueueUrl) throw new Error(`SQS created build queue ${queueName} without a URL`);
  // Registered once it exists: dispatches receive from the queues the rows list.
  await BuildQueues.put(item, { expression: "attribute_not_exists(queueKey)" });
  known?.queues.set(queueKey, item);
  return QueueUrl;
}

/** Forgets a cached URL (the queue vanished, as on a local restart). */
export const forgetBuildQueue = (queueKey: string) => urls.delete(queueKey);

/**
 * How long a warm handler believes its list of build queues (every dispatch reads it). Safe to
 * be stale: a queue created meanwhile by another handler is one that handler sent a derivation
 * to and woke idle agents for (a queue this handler sends to joins its list at once); this
 * handler's dispatches ask it once the list is read again, and the sweeper re-sends and wakes
 * for what waits too long.
 */
const QUEUES_TTL_MS = 5_000;
let known: { until: number; queues: Map<string, BuildQueueItem> } | undefined;

/** The build queues created so far (a small table: one item per (system, features)), from this handler's copy while fresh. */
export async function listBuildQueues(now: number = Date.now()): Promise<BuildQueueItem[]> {
  if (!known || known.until <= now) {
    const items = await BuildQueues.scan();
    known = { until: now + QUEUES_TTL_MS, queues: new Map(items.map((q) => [q.queueKey, q])) };
  }
  return [...known.queues.values()];
}

/**
 * Puts a queued derivation on its queue. Each derivation is its own message group (so
 * builds of one queue run in parallel), and the deduplication id names the attempt (and the
 * sweeper's re-send), so sending twice within SQS's 5-minute window is harmless. The message
 * carries what its start needs when every input is at hand — on its item, or `known` (the input
 * a settle just settled): core `inputsAtHand`, `buildStartOf`.
 */
export async function sendToBuildQueue(drv: DerivationItem & { resend?: number }, known: readonly BuiltInput[] = []): Promise<void> {
  const entry = messageOf(drv, known);
  await toQueue(drv.queueKey, (QueueUrl) => sqs().send(new SendMessageCommand({ QueueUrl, ...entry })));
}

/** Sends to a build queue; a local stack restarts with empty queues: the queue is created again and the send tried once more. */
async function toQueue<T>(queueKey: string, send: (url: string) => Promise<T>): Promise<T> {
  try {
    return await send(await buildQueueUrl(queueKey));
  } catch (error) {
    if (!isMissingQueue(error)) throw error;
    forgetBuildQueue(queueKey);
    return send(await buildQueueUrl(queueKey));
  }
}

/** A queued derivation's message: what its start needs when at hand, its own group, and a deduplication id naming the attempt (and re-send). */
function messageOf(drv: DerivationItem & { resend?: number }, known: readonly BuiltInput[]) {
  const inputs = inputsAtHand(drv, known);
  const start = inputs && buildStartOf(drv, inputs);
  const body: BuildMessage = { drvPath: drv.drvPath, attempt: drv.attempt, ...(start ? { start } : {}) };
  return {
    MessageBody: JSON.stringify(body),
    MessageGroupId: hexDigest(drv.drvPath, 32),
    MessageDeduplicationId: hexDigest(`${drv.drvPath}#${drv.attempt}${drv.resend ? `#${drv.resend}` : ""}`),
  };
}

/** SQS takes at most 10 messages, of 256 KB together, in one SendMessageBatch. */
const BATCH_ENTRIES = 10;
const BATCH_BYTES = 200 * 1024;

/**
 * Puts several queued derivations on their queues as `sendToBuildQueue` does each, up to ten
 * messages of one queue per request (an evaluation's batch creates many ready at once). An entry
 * SQS refuses is sent alone, which throws what it says.
 */
export async function sendToBuildQueues(drvs: readonly { drv: DerivationItem; known?: readonly BuiltInput[] }[]): Promise<void> {
  const byQueue = new Map<string, SendMessageBatchRequestEntry[]>();
  const sent = new Map<string, { drv: DerivationItem; known?: readonly BuiltInput[] }>();
  for (const [i, one] of drvs.entries()) {
    const entries = byQueue.get(one.drv.queueKey) ?? [];
    entries.push({ Id: String(i), ...messageOf(one.drv, one.known ?? []) });
    byQueue.set(one.drv.queueKey, entries);
    sent.set(String(i), one);
  }
  const requests = [...byQueue].flatMap(([queueKey, entries]) => chunks(entries).map((chunk) => ({ queueKey, chunk })));
  await Promise.all(
    requests.map(async ({ queueKey, chunk }) => {
      const { Failed } = await toQueue(queueKey, (QueueUrl) => sqs().send(new SendMessageBatchCommand({ QueueUrl, Entries: chunk })));
      for (const { Id } of Failed ?? []) {
        const one = sent.get(Id ?? "");
        if (one) await sendToBuildQueue(one.drv, one.known);
      }
    }),
  );
}

/** Entries in requests SQS takes: at most BATCH_ENTRIES, and BATCH_BYTES of bodies, each. */
function chunks(entries: readonly SendMessageBatchRequestEntry[]): SendMessageBatchRequestEntry[][] {
  const out: SendMessageBatchRequestEntry[][] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry.MessageBody ?? "");
    const last = out.at(-1);
    if (last && last.length < BATCH_ENTRIES && bytes + size <= BATCH_BYTES) {
      last.push(entry);
      bytes += size;
    } else {
      out.push([entry]);
      bytes = size;
    }
  }
  return out;
}
