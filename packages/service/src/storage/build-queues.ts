import { CreateQueueCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
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
  const inputs = inputsAtHand(drv, known);
  const start = inputs && buildStartOf(drv, inputs);
  const body: BuildMessage = { drvPath: drv.drvPath, attempt: drv.attempt, ...(start ? { start } : {}) };
  const send = async () =>
    sqs().send(
      new SendMessageCommand({
        QueueUrl: await buildQueueUrl(drv.queueKey),
        MessageBody: JSON.stringify(body),
        MessageGroupId: hexDigest(drv.drvPath, 32),
        MessageDeduplicationId: hexDigest(`${drv.drvPath}#${drv.attempt}${drv.resend ? `#${drv.resend}` : ""}`),
      }),
    );
  try {
    await send();
  } catch (error) {
    // A local stack restarts with empty queues: create it again and retry once.
    if (!isMissingQueue(error)) throw error;
    forgetBuildQueue(drv.queueKey);
    await send();
  }
}
