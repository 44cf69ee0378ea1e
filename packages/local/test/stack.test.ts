import assert from "node:assert/strict";
import { parseSecretKey } from "@nimbus/cache";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, ListQueuesCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { ScheduledEvent, SQSEvent } from "aws-lambda";
import { Resource } from "sst";
import { queues, schedules, secrets, tables } from "@nimbus/service/resource-specs";
import { LocalStackError, localTableName, startLocalStack, type LocalStack, type LocalStackOptions } from "../src/index.ts";
import { FixtureHandlers, sleep, temporaryDirectory } from "./fixtures/handlers.ts";

const fixtures = new FixtureHandlers();
let dataDir: string;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  const dir = await temporaryDirectory();
  dataDir = dir.path;
  cleanups.push(dir.remove);
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

function start(options: Partial<LocalStackOptions> = {}): Promise<LocalStack> {
  return startLocalStack({ port: 0, dataDir, sweepIntervalMs: 0, resolveHandler: fixtures.resolve, log: () => {}, ...options });
}

/** Handlers build SDK clients from the environment alone, as in Lambda. */
const dynamodb = () => new DynamoDBClient({});

test("creates every table and sets the environment handlers read through SST's Resource", async () => {
  const stack = await start();
  try {
    const client = dynamodb();
    const { TableNames } = await client.send(new ListTablesCommand({}));
    client.destroy();
    for (const name of Object.keys(tables)) assert.ok(TableNames?.includes(localTableName(name)), name);

    assert.equal(process.env.AWS_ENDPOINT_URL_DYNAMODB, stack.dynamodbEndpoint);
    assert.equal(process.env.AWS_ENDPOINT_URL_SQS, stack.sqsEndpoint);
    assert.equal(process.env.AWS_REGION, "us-east-1");
    assert.deepEqual(JSON.parse(process.env.SST_RESOURCE_App!), { name: "nimbus", stage: "local" });

    const resource = Resource as unknown as Record<string, Record<string, string>>;
    assert.equal(resource.Tokens?.name, "nimbus-local-Tokens");
    assert.equal(resource.Connections?.name, "nimbus-local-Connections");
    assert.equal(resource.ApiAdminToken?.value, stack.adminToken);
    assert.equal(resource.AgentSocket?.url, stack.agentSocketUrl);
    assert.equal(resource.AgentSocket?.managementEndpoint, stack.managementEndpoint);
    assert.match(stack.managementEndpoint, new RegExp(`^${stack.url}/_gateway/[A-Za-z0-9_-]{32}$`), "a secret in the path");
    assert.equal(resource.HttpApi?.url, stack.url);
    assert.equal(stack.agentSocketUrl, `ws://127.0.0.1:${stack.port}/agent`);

    const sqs = new SQSClient({});
    await sqs.send(new ListQueuesCommand({}));
    sqs.destroy();
  } finally {
    await stack.stop();
  }
});

test("one stack per process: a second start while one runs is refused", async () => {
  const stack = await start();
  try {
    await assert.rejects(start(), (error: Error) => error instanceof LocalStackError && /already running/.test(error.message));
  } finally {
    await stack.stop();
  }
});

test("DynamoDB data and secrets survive a restart, on the same ports", async () => {
  const first = await start();
  const item = { tokenId: { S: "t-1" }, name: { S: "laptop" } };
  let client = dynamodb();
  await client.send(new PutItemCommand({ TableName: localTableName("Tokens"), Item: item }));
  client.destroy();
  const { port, dynamodbEndpoint, sqsEndpoint, adminToken } = first;
  await first.stop();

  const second = await start();
  try {
    assert.equal(second.port, port);
    assert.equal(second.dynamodbEndpoint, dynamodbEndpoint);
    assert.equal(second.sqsEndpoint, sqsEndpoint);
    assert.equal(second.adminToken, adminToken);
    client = dynamodb();
    const { Item } = await client.send(new GetItemCommand({ TableName: localTableName("Tokens"), Key: { tokenId: { S: "t-1" } } }));
    client.destroy();
    assert.deepEqual(Item, item);
  } finally {
    await second.stop();
  }
});

test("secrets.json holds one random value per secret of the stack's own, `none` for the GitHub ones the user brings, and the built-in cache's Nix key pair, mode 0600", async () => {
  const stack = await start();
  await stack.stop();
  const path = join(dataDir, "secrets.json");
  assert.equal(stack.secretsPath, path);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  const stored = JSON.parse(await readFile(path, "utf8")) as Record<string, string>;
  assert.deepEqual(Object.keys(stored).sort(), [...secrets].sort());
  const userSecrets = ["GithubAppId", "GithubAppPrivateKey", "GithubToken"];
  for (const [name, value] of Object.entries(stored)) {
    if (userSecrets.includes(name)) assert.equal(value, "none", name);
    else if (name === "CacheSigningKey" || name === "CachePublicKey") assert.match(value, /^nimbus-local-1:[A-Za-z0-9+/]+={0,2}$/, name);
    else assert.match(value, /^[A-Za-z0-9_-]{43}$/, name);
  }
  assert.equal(parseSecretKey(stored.CacheSigningKey!).publicKey.text, stored.CachePublicKey, "the public key is the signing key's");
  assert.equal(stored.ApiAdminToken, stack.adminToken);
  assert.notEqual(stored.ApiAdminToken, stored.GithubWebhookSecret);
});

test("a restart on another data directory updates what Resource returns", async () => {
  const other = await temporaryDirectory();
  cleanups.push(other.remove);
  const stack = await start({ dataDir: other.path });
  try {
    const resource = Resource as unknown as Record<string, Record<string, string>>;
    assert.equal(resource.ApiAdminToken?.value, stack.adminToken);
  } finally {
    await stack.stop();
  }
});

test("a restart cannot move to another port in the same process", async () => {
  await assert.rejects(start({ port: 1 }), (error: Error) => error instanceof LocalStackError && /cannot move/.test(error.message));
  // ... and that refusal leaves the process free to start again.
  const stack = await start();
  await stack.stop();
});

test("the sweeper runs on its interval with a scheduled event, never overlapping itself", async () => {
  let running = 0;
  let maxRunning = 0;
  fixtures.on(schedules.Sweeper.handler, async () => {
    maxRunning = Math.max(maxRunning, ++running);
    await sleep(60);
    running--;
  });
  const stack = await start({ sweepIntervalMs: 20 });
  // Three runs, however slow the machine is (a fixed sleep flaked under load).
  for (let waited = 0; fixtures.events(schedules.Sweeper.handler).length < 3; waited += 20) {
    assert.ok(waited < 30_000, "the sweeper did not run three times within 30 s");
    await sleep(20);
  }
  await stack.stop();
  const calls = fixtures.events<ScheduledEvent>(schedules.Sweeper.handler);
  assert.ok(calls.length >= 3, `${calls.length} runs`);
  assert.equal(maxRunning, 1);
  assert.equal(running, 0, "stop waits for the run in progress");
  assert.equal(calls[0]?.["detail-type"], "Scheduled Event");
  assert.equal(calls[0]?.source, "aws.scheduler");
  const count = calls.length;
  await sleep(60);
  assert.equal(fixtures.events(schedules.Sweeper.handler).length, count, "no run after stop");
});

test("a queue with a consumer is polled: its handler gets Lambda's SQS event, and only what failed stays", async () => {
  const spec = queues.DisconnectChecks.consumer.handler;
  fixtures.on(spec, async (event: SQSEvent) => ({
    batchItemFailures: event.Records.filter((r) => r.body.includes("fails")).map((r) => ({ itemIdentifier: r.messageId })),
  }));
  const stack = await start();
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  try {
    const url = (Resource as unknown as Record<string, { url: string }>).DisconnectChecks!.url;
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"check":"succeeds"}' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"check":"fails"}' }));
    const seen = async () => fixtures.events<SQSEvent>(spec).flatMap((e) => e.Records.map((r) => r.body));
    await fixtures.waitFor<SQSEvent>(spec, () => true);
    for (let i = 0; i < 50 && (await seen()).length < 2; i++) await sleep(50);
    assert.deepEqual((await seen()).sort(), ['{"check":"fails"}', '{"check":"succeeds"}']);
    const [record] = fixtures.events<SQSEvent>(spec)[0]!.Records;
    assert.equal(record!.eventSource, "aws:sqs");
    assert.match(record!.eventSourceARN, /^arn:aws:sqs:us-east-1:000000000000:nimbus-local-DisconnectChecks$/);
    assert.equal(record!.attributes.ApproximateReceiveCount, "1");
    // The failed one is in flight until its visibility timeout; the other was deleted.
    let counts: Record<string, string> = {};
    for (let i = 0; i < 50; i++) {
      const { Attributes = {} } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }));
      counts = Attributes;
      if (counts.ApproximateNumberOfMessagesNotVisible === "1" && counts.ApproximateNumberOfMessages === "0") break;
      await sleep(50);
    }
    assert.deepEqual(counts, { ApproximateNumberOfMessages: "0", ApproximateNumberOfMessagesNotVisible: "1" });
  } finally {
    sqs.destroy();
    await stack.stop();
  }
});
