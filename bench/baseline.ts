/**
 * What the emulators cost on their own, measured in the same run: one SQS FIFO
 * send + receive + delete, and one DynamoDB conditional PutItem, through fresh SDK clients
 * (not the handlers' clients, so these requests are never counted as the service's).
 */
import { randomUUID } from "node:crypto";
import { BatchWriteItemCommand, CreateTableCommand, DescribeTableCommand, DynamoDBClient, PutItemCommand, type WriteRequest } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { summarize, type Summary } from "./stats.ts";

const REGION = "us-east-1";
const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };
const WARMUP = 10;

export interface Baseline {
  repetitions: number;
  /** One SendMessage + ReceiveMessage + DeleteMessage on a FIFO queue, ms. */
  sqsSendReceiveDeleteMs: Summary;
  /** One PutItem with `attribute_not_exists`, ms. */
  dynamodbConditionalPutMs: Summary;
}

async function timed(repetitions: number, once: (i: number) => Promise<void>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await once(-1 - i);
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const start = performance.now();
    await once(i);
    samples.push(performance.now() - start);
  }
  return samples;
}

export async function measureSqs(endpoint: string, repetitions: number): Promise<Summary> {
  // As the service does: send to the endpoint, not the queue URL's host (fauxqs's need not resolve).
  const sqs = new SQSClient({ endpoint, region: REGION, credentials: CREDENTIALS, useQueueUrlAsEndpoint: false });
  try {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: `nimbus-bench-baseline-${randomUUID().slice(0, 8)}.fifo`, Attributes: { FifoQueue: "true" } }),
    );
    const samples = await timed(repetitions, async (i) => {
      await sqs.send(
        new SendMessageCommand({ QueueUrl, MessageBody: `{"i":${i}}`, MessageGroupId: `g${i}`, MessageDeduplicationId: randomUUID() }),
      );
      for (let tries = 0; ; tries++) {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 }));
        const message = Messages[0];
        if (message) {
          await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle }));
          return;
        }
        if (tries > 100) throw new Error("baseline: a message sent to the FIFO queue never arrived");
      }
    });
    return summarize(samples, 3);
  } finally {
    sqs.destroy();
  }
}

async function createTable(dynamo: DynamoDBClient): Promise<string> {
  const TableName = `nimbus-bench-baseline-${randomUUID().slice(0, 8)}`;
  await dynamo.send(
    new CreateTableCommand({
      TableName,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  for (let tries = 0; ; tries++) {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName }));
    if (Table?.TableStatus === "ACTIVE") return TableName;
    if (tries > 100) throw new Error(`baseline: table ${TableName} never became ACTIVE`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function measureDynamo(endpoint: string, repetitions: number): Promise<Summary> {
  const dynamo = new DynamoDBClient({ endpoint, region: REGION, credentials: CREDENTIALS });
  try {
    const TableName = await createTable(dynamo);
    const run = randomUUID();
    const samples = await timed(repetitions, async (i) => {
      await dynamo.send(
        new PutItemCommand({
          TableName,
          Item: { pk: { S: `${run}-${i}` }, status: { S: "queued" }, at: { S: new Date().toISOString() } },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    });
    return summarize(samples, 3);
  } finally {
    dynamo.destroy();
  }
}

export async function measureBaseline(endpoints: { sqs: string; dynamodb: string }, repetitions: number): Promise<Baseline> {
  return {
    repetitions,
    sqsSendReceiveDeleteMs: await measureSqs(endpoints.sqs, repetitions),
    dynamodbConditionalPutMs: await measureDynamo(endpoints.dynamodb, repetitions),
  };
}

/**
 * The ingest floor: a bare loop of BatchWriteItem (25 items each, one after the other, the
 * unprocessed ones sent again) writing one item per event — the event's JSON under its key —
 * to a fresh table of the same emulator. Returns items per second.
 */
export async function measureBatchWriteFloor(endpoint: string, items: ReadonlyArray<{ key: string; body: string }>): Promise<{ items: number; seconds: number; itemsPerSecond: number }> {
  const dynamo = new DynamoDBClient({ endpoint, region: REGION, credentials: CREDENTIALS });
  try {
    const TableName = await createTable(dynamo);
    const start = performance.now();
    for (let i = 0; i < items.length; i += 25) {
      let requests: WriteRequest[] = items.slice(i, i + 25).map((item) => ({ PutRequest: { Item: { pk: { S: item.key }, body: { S: item.body } } } }));
      for (let tries = 0; requests.length > 0; tries++) {
        if (tries > 100) throw new Error("floor: BatchWriteItem kept leaving items unprocessed");
        const { UnprocessedItems } = await dynamo.send(new BatchWriteItemCommand({ RequestItems: { [TableName]: requests } }));
        requests = UnprocessedItems?.[TableName] ?? [];
      }
    }
    const seconds = (performance.now() - start) / 1000;
    return { items: items.length, seconds, itemsPerSecond: items.length / seconds };
  } finally {
    dynamo.destroy();
  }
}

/**
 * What ingest could reach at best while each new derivation is one conditional PutItem (its
 * creation must not overwrite one another registration made: docs/reliability.md, "What an
 * evaluator may assert"): `count` PutItems with `attribute_not_exists`, `concurrency` in
 * flight (as flow/register-batch.ts sends them), items of about a derivation's size, to a fresh
 * table of the same emulator, and nothing else.
 */
export async function measureConditionalPutCeiling(endpoint: string, count: number, concurrency: number): Promise<{ seconds: number; putsPerSecond: number }> {
  const dynamo = new DynamoDBClient({ endpoint, region: REGION, credentials: CREDENTIALS });
  try {
    const TableName = await createTable(dynamo);
    const at = new Date().toISOString();
    const start = performance.now();
    let next = 0;
    const put = (i: number) =>
      dynamo.send(
        new PutItemCommand({
          TableName,
          Item: {
            pk: { S: `/nix/store/${String(i).padStart(32, "0")}-derivation-${i}.drv` },
            system: { S: "x86_64-linux" },
            outputs: { M: { out: { S: `/nix/store/${String(i).padStart(32, "1")}-derivation-${i}` } } },
            status: { S: "waiting" },
            version: { N: "0" },
            jobIds: { SS: ["j000000000000aaaaaaaa"] },
            createdAt: { S: at },
            history: { L: [{ M: { at: { S: at }, status: { S: "waiting" } } }] },
          },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    // `concurrency` loops, each sending the next put once its last one is answered.
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) await put(next++);
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    return { seconds, putsPerSecond: count / seconds };
  } finally {
    dynamo.destroy();
  }
}
