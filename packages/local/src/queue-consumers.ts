/**
 * SQS event sources locally: a poller per queue that has a consumer in resource-specs.ts,
 * delivering batches to its handler in the event shape Lambda gives (`SQSEvent`), as AWS's
 * event source mapping does. Messages the handler does not name in `batchItemFailures` are
 * deleted; when the handler throws, none are, and all come back after the visibility timeout.
 */
import { createHash } from "node:crypto";
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { describeError } from "./handlers.ts";

export interface QueueConsumer {
  /** Resource name, e.g. `DisconnectChecks`. */
  name: string;
  url: string;
  handler: string;
  batchSize: number;
}

export interface QueueConsumers {
  /** Stops polling; a batch being handled finishes on its own (the invoker's drain waits for it). */
  stop(): Promise<void>;
}

/** How long one receive waits for messages (long polling); stop() cuts it short. */
const POLL_SECONDS = 5;
/** A pause after a failed receive (the queue service restarting, say). */
const RETRY_MS = 1_000;

function sqsRecord(message: Message, queue: QueueConsumer, region: string): SQSRecord {
  const body = message.Body ?? "";
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body,
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? "000000000000",
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? createHash("md5").update(body).digest("hex"),
    eventSource: "aws:sqs",
    eventSourceARN: `arn:aws:sqs:${region}:000000000000:${queue.url.split("/").pop()}`,
    awsRegion: region,
  };
}

/** Which received messages to delete after the handler answered (all but the failures). */
export function messagesDone(messages: readonly Message[], response: unknown): Message[] {
  const failures = (response as SQSBatchResponse | undefined)?.batchItemFailures ?? [];
  const failed = new Set(failures.map((f) => f.itemIdentifier));
  return messages.filter((m) => !failed.has(m.MessageId ?? ""));
}

export function startQueueConsumers(options: {
  consumers: readonly QueueConsumer[];
  endpoint: string;
  invoke: (spec: string, event: unknown) => Promise<unknown>;
  log: (line: string) => void;
  region?: string;
}): QueueConsumers {
  const region = options.region ?? "us-east-1";
  const client = new SQSClient({
    endpoint: options.endpoint,
    useQueueUrlAsEndpoint: false,
    region,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  const stopping = new AbortController();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      stopping.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });

  async function poll(queue: QueueConsumer): Promise<void> {
    while (!stopping.signal.aborted) {
      let messages: Message[];
      try {
        const received = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queue.url,
            MaxNumberOfMessages: queue.batchSize,
            WaitTimeSeconds: POLL_SECONDS,
            MessageSystemAttributeNames: ["All"],
          }),
          { abortSignal: stopping.signal },
        );
        messages = received.Messages ?? [];
      } catch (error) {
        if (stopping.signal.aborted) return;
        options.log(`queue ${queue.name}: receive failed: ${describeError(error)}`);
        await pause(RETRY_MS);
        continue;
      }
      if (messages.length === 0) continue;
      const event: SQSEvent = { Records: messages.map((m) => sqsRecord(m, queue, region)) };
      let done: Message[];
      try {
        done = messagesDone(messages, await options.invoke(queue.handler, event));
      } catch (error) {
        options.log(`queue ${queue.name}: ${queue.handler} failed: ${describeError(error)}`);
        continue;
      }
      if (done.length === 0) continue;
      try {
        await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queue.url,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      } catch (error) {
        options.log(`queue ${queue.name}: delete failed: ${describeError(error)}`);
      }
    }
  }

  const polling = Promise.all(options.consumers.map((queue) => poll(queue)));
  return {
    async stop() {
      stopping.abort();
      await polling;
      client.destroy();
    },
  };
}
