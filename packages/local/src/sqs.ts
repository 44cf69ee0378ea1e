/** SQS locally: fauxqs, in memory (queues are recreated by whoever needs them). */
import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import type { QueueSpec } from "@nimbus/service/resource-specs";

export interface SqsServer {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startSqs(options: { host: string; port: number }): Promise<SqsServer> {
  // buildApp rather than startFauxqs: startFauxqs always binds 0.0.0.0, which would put an
  // unauthenticated queue service on the network. Its queue URLs name the host
  // `sqs.<region>.localhost`, so SQS clients send to their endpoint, not to the URL's host.
  const app = buildApp({ logger: false, defaultRegion: "us-east-1" });
  const address = await app.listen({ port: options.port, host: options.host });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://${options.host}:${port}`,
    port,
    stop: () => app.close(),
  };
}

/**
 * Creates the static queues of resource-specs.ts (CreateQueue is idempotent) and returns their
 * URLs by resource name. Build queues are created by the handlers themselves on first use.
 */
export async function ensureQueues(
  endpoint: string,
  specs: Record<string, QueueSpec>,
  nameOf: (name: string) => string,
): Promise<Record<string, string>> {
  const client = new SQSClient({
    endpoint,
    useQueueUrlAsEndpoint: false,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
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
