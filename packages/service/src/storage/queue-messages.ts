/**
 * The bodies of the messages Nimbus puts on SQS, one zod schema each, and how the dispatch
 * runner takes them off: receive, delete, put back. SQS only carries work (DynamoDB is the
 * source of truth), so a body names what to look up — and, for a build, what its start needs
 * that cannot change while it waits (its inputs' outputs), checked against the item by the lease.
 */
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type Message } from "@aws-sdk/client-sqs";
import { FeatureName, StorePath, SystemName } from "@nimbus/protocol";
import { z } from "zod";
import { sqs } from "../platform/aws-clients.ts";

/** An Evaluations queue message: the job whose commit waits to be evaluated. */
export const EvaluationMessage = z.strictObject({ jobId: z.string().min(1).max(64) });
export type EvaluationMessage = z.infer<typeof EvaluationMessage>;

/**
 * What a build's start needs (core `buildStartOf`), when its queuer had its inputs at hand:
 * the claim places it and writes its `build` from these, reading nothing before the lease.
 * Bounded as the item fields and the `build` they come from.
 */
export const BuildStartBody = z.strictObject({
  system: SystemName,
  requiredFeatures: z.array(FeatureName).max(64),
  needs: z.array(z.array(z.string().min(1).max(1100)).min(1).max(64)).max(1024),
  inputs: z.array(StorePath).min(1).max(2000).optional(),
  inputCaches: z.array(z.string().min(1).max(1024)).min(1).max(64).optional(),
});
export type BuildStartBody = z.infer<typeof BuildStartBody>;

/**
 * A build queue message: the derivation that waits for an agent, which attempt, and what its
 * start needs (`start`, when it fits; messages queued before it existed name the derivation only).
 */
export const BuildMessage = z.strictObject({ drvPath: z.string().min(1), attempt: z.number().int().min(0), start: BuildStartBody.optional() });
export type BuildMessage = z.infer<typeof BuildMessage>;

/** An Effects queue message: the effect whose turn has come, and which attempt. */
export const EffectMessage = z.strictObject({ jobId: z.string().min(1).max(64), attribute: z.string().min(1), attempt: z.number().int().min(0) });
export type EffectMessage = z.infer<typeof EffectMessage>;

/** A DisconnectChecks queue message: the session whose connection closed, which one, and when. */
export const DisconnectCheckMessage = z.strictObject({
  sessionId: z.string().min(1).max(64),
  connectionId: z.string().min(1).max(256),
  detachedAt: z.iso.datetime(),
});
export type DisconnectCheckMessage = z.infer<typeof DisconnectCheckMessage>;

/** A FanOut queue message: the next page of a settle's dependents, or of a cancelled job's derivations (core fan-out.ts). */
export const FanOutMessage = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("settle"), drvPath: z.string().min(1), version: z.number().int().min(0), after: z.string().min(1).optional() }),
  z.strictObject({ type: z.literal("cancel"), jobId: z.string().min(1).max(64), after: z.string().min(1).optional() }),
]);
export type FanOutMessage = z.infer<typeof FanOutMessage>;

/** A message whose body is not its queue's shape: nothing can be done with it. */
export class MalformedMessageError extends Error {
  override name = "MalformedMessageError";
  constructor(queue: string, messageId: string | undefined, issues: string) {
    super(`message ${messageId ?? "(no id)"} on ${queue} is malformed: ${issues}`);
  }
}

export function parseMessageBody<S extends z.ZodType>(queue: string, message: Message, schema: S): z.infer<S> {
  let body: unknown;
  try {
    body = JSON.parse(message.Body ?? "");
  } catch {
    throw new MalformedMessageError(queue, message.MessageId, "the body is not JSON");
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new MalformedMessageError(queue, message.MessageId, parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; "));
}

export const isMissingQueue = (error: unknown) =>
  error instanceof Error && (error.name === "QueueDoesNotExist" || error.name.includes("NonExistentQueue"));

/** Up to `max` messages, at once (no long polling); [] and `onMissing()` if the queue is gone. */
export async function receiveMessages(url: string, max: number, onMissing: () => void): Promise<Message[]> {
  try {
    const { Messages = [] } = await sqs().send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: max, WaitTimeSeconds: 0 }));
    return Messages;
  } catch (error) {
    if (!isMissingQueue(error)) throw error;
    onMissing();
    return [];
  }
}

export async function deleteMessage(url: string, message: Message): Promise<void> {
  await sqs().send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }));
}

/**
 * How many messages a queue holds — waiting, in flight and delayed — as SQS approximates it;
 * 0 for a queue that is gone.
 */
export async function queueDepth(url: string): Promise<number> {
  const attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"] as const;
  try {
    const { Attributes = {} } = await sqs().send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [...attributes] }));
    return attributes.reduce((n, name) => n + (Number(Attributes[name]) || 0), 0);
  } catch (error) {
    if (isMissingQueue(error)) return 0;
    throw error;
  }
}

/** Makes a received message visible again at once, for another receiver. */
export async function putMessageBack(url: string, message: Message): Promise<void> {
  await sqs().send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 }));
}
