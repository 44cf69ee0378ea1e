/** SQS locally: fauxqs, in memory (queues are recreated by whoever needs them). */
import { CreateQueueCommand, SendMessageCommand, SQSClient, type SendMessageCommandInput } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import type { QueueSpec } from "@nimbus/service/resource-specs";
import type { FaultInjector } from "./faults.ts";

export interface SqsServer {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startSqs(options: { host: string; port: number; faults?: FaultInjector }): Promise<SqsServer> {
  // buildApp rather than startFauxqs: startFauxqs always binds 0.0.0.0, which would put an
  // unauthenticated queue service on the network. Its queue URLs name the host
  // `sqs.<region>.localhost`, so SQS clients send to their endpoint, not to the URL's host.
  const app = buildApp({ logger: false, defaultRegion: "us-east-1" });
  let duplicates: SQSClient | undefined;
  const faults = options.faults;
  if (faults) {
    // SQS delivers at least once: a chaos run gets some messages twice, as a copy sent after the original.
    app.addHook("onResponse", async (request: { headers: Record<string, unknown>; body: unknown }, reply: { statusCode: number }) => {
      if (reply.statusCode !== 200 || request.headers["x-amz-target"] !== "AmazonSQS.SendMessage" || request.headers[DUPLICATE_HEADER]) return;
      if (!faults.duplicateMessage()) return;
      const sent = request.body as SendMessageCommandInput;
      duplicates ??= duplicatingClient(`http://${options.host}:${port}`);
      await duplicates
        .send(new SendMessageCommand({ ...sent, ...(sent.MessageDeduplicationId ? { MessageDeduplicationId: `${sent.MessageDeduplicationId}-dup` } : {}) }))
        .catch(() => {});
    });
  }
  const address = await app.listen({ port: options.port, host: options.host });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://${options.host}:${port}`,
    port,
    stop: async () => {
      duplicates?.destroy();
      await app.close();
    },
  };
}

/** Marks the copies, which are not copied again. */
const DUPLICATE_HEADER = "x-nimbus-duplicate";

function duplicatingClient(endpoint: string): SQSClient {
  const client = localSqsClient(endpoint);
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers[DUPLICATE_HEADER] = "1";
      return next(args);
    },
    { step: "build", name: "markDuplicate" },
  );
  return client;
}

const localSqsClient = (endpoint: string) =>
  new SQSClient({
    endpoint,
    useQueueUrlAsEndpoint: false,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });

/**
 * Creates the static queues of resource-specs.ts (CreateQueue is idempotent) and returns their
 * URLs by resource name. Build queues are created by the handlers themselves on first use.
 */
export async function ensureQueues(
  endpoint: string,
  specs: Record<string, QueueSpec>,
  nameOf: (name: string) => string,
): Promise<Record<string, string>> {
  const client = localSqsClient(endpoint);
  try {
    const urls: Record<string, string> = {};
    for (const [name, spec] of Object.entries(specs)) {
      const { QueueUrl } = await client.send(
        new CreateQueueCommand({
          QueueName: `${nameOf(name)}${spec.fifo ? ".fifo" : ""}`,
          Attributes: {
            ...(spec.fifo ? { FifoQueue: "true" } : {}),
            VisibilityTimeout: String(spec.visibilityTimeoutSeconds),
          },
        }),
      );
      urls[name] = QueueUrl!;
    }
    return urls;
  } finally {
    client.destroy();
  }
}
