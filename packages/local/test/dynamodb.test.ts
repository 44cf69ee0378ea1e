import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BatchWriteItemCommand, DeleteItemCommand, DescribeTableCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { TableSpec } from "@nimbus/service/resource-specs";
import { crashDynamo, ensureTables, startDynamo, TableSchemaError, type DynamoServer } from "../src/dynamodb.ts";
import { useDataDir } from "./fixtures/handlers.ts";

let dynamo: DynamoServer;
let client: DynamoDBClient;

useDataDir(
  async (dataDir) => {
    dynamo = await startDynamo({ dataDir, host: "127.0.0.1", port: 0 });
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
  },
  async () => {
    client.destroy();
    await dynamo.stop();
  },
);

const jobs = {
  fields: { jobId: "string", createdAt: "number", repo: "string" },
  primaryIndex: { hashKey: "jobId" },
  globalIndexes: { ByRepo: { hashKey: "repo", rangeKey: "createdAt" } },
  ttl: "expiresAt",
} satisfies TableSpec;

test("creates tables on demand with their GSIs projecting ALL, and is idempotent", async () => {
  await ensureTables(dynamo.endpoint, { Jobs: jobs }, (name) => `t-${name}`);
  await ensureTables(dynamo.endpoint, { Jobs: jobs }, (name) => `t-${name}`);
  const { Table } = await client.send(new DescribeTableCommand({ TableName: "t-Jobs" }));
  assert.equal(Table?.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST");
  assert.deepEqual(Table?.KeySchema, [{ AttributeName: "jobId", KeyType: "HASH" }]);
  const [index] = Table?.GlobalSecondaryIndexes ?? [];
  assert.equal(index?.IndexName, "ByRepo");
  assert.deepEqual(index?.KeySchema, [
    { AttributeName: "repo", KeyType: "HASH" },
    { AttributeName: "createdAt", KeyType: "RANGE" },
  ]);
  assert.equal(index?.Projection?.ProjectionType, "ALL");
});

test("a table on disk that no longer matches its spec is a clear error", async () => {
  const withNewIndex = { ...jobs, globalIndexes: { ...jobs.globalIndexes, ByStatus: { hashKey: "repo" } } };
  await assert.rejects(
    ensureTables(dynamo.endpoint, { Jobs: withNewIndex }, (name) => `t-${name}`),
    (error: Error) => error instanceof TableSchemaError && /t-Jobs .*index ByStatus is missing.*delete/.test(error.message),
  );
});

test("a port already in use is a clear error, and nothing is left running", async () => {
  await assert.rejects(
    startDynamo({ dataDir: await mkdtemp(join(tmpdir(), "nimbus-dynamo-")), host: "127.0.0.1", port: dynamo.port }),
    (error: Error & { code?: string }) => error.code === "EADDRINUSE" && error.message.includes(`127.0.0.1:${dynamo.port}`),
  );
});

test("stopping closes LevelDB: a new start on the same directory reads what was written", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "nimbus-dynamo-"));
  try {
    const first = await startDynamo({ dataDir, host: "127.0.0.1", port: 0 });
    await ensureTables(first.endpoint, { Jobs: jobs }, (name) => `again-${name}`);
    await first.stop();
    const second = await startDynamo({ dataDir, host: "127.0.0.1", port: 0 });
    const reader = new DynamoDBClient({ endpoint: second.endpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    try {
      const { Table } = await reader.send(new DescribeTableCommand({ TableName: "again-Jobs" }));
      assert.equal(Table?.TableName, "again-Jobs");
    } finally {
      reader.destroy();
      await second.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("an index the spec keeps keys-only is created KEYS_ONLY: an update that changes no key writes only the table", async () => {
  const lists = { ...jobs, globalIndexes: { ByRepo: { hashKey: "repo", rangeKey: "createdAt", projection: "keys-only" } } } satisfies TableSpec;
  await ensureTables(dynamo.endpoint, { Lists: lists }, (name) => `t-${name}`);
  const { Table } = await client.send(new DescribeTableCommand({ TableName: "t-Lists" }));
  assert.equal(Table?.GlobalSecondaryIndexes?.[0]?.Projection?.ProjectionType, "KEYS_ONLY");
});

test("a thread that dies says so once, naming why, and still stops; a stop says nothing", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "nimbus-dynamo-"));
  const told: string[] = [];
  try {
    const crashed = await startDynamo({ dataDir, host: "127.0.0.1", port: 0, onFailure: (m) => told.push(m) });
    crashDynamo(crashed, "boom");
    for (let i = 0; i < 100 && told.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 100)); // its exit follows the error: still one message
    assert.equal(told.length, 1, told.join("\n"));
    assert.match(told[0]!, /DynamoDB stopped: dynalite's thread failed: Error: boom; every request fails from now on — restart the stack/);
    await crashed.stop();

    const stopped = await startDynamo({ dataDir: await mkdtemp(join(tmpdir(), "nimbus-dynamo-")), host: "127.0.0.1", port: 0, onFailure: (m) => told.push(m) });
    await stopped.stop();
    assert.equal(told.length, 1, "a stop is not a failure");
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("a write's reported capacity counts its global indexes' writes, as DynamoDB bills them", async () => {
  // `state` in an index of all attributes, `shard` in a keys-only one.
  const items = {
    fields: { id: "string", state: "string", shard: "string" },
    primaryIndex: { hashKey: "id" },
    globalIndexes: { byState: { hashKey: "state" }, byShard: { hashKey: "shard", projection: "keys-only" } },
  } satisfies TableSpec;
  await ensureTables(dynamo.endpoint, { Items: items }, (name) => `c-${name}`);
  const units = async (command: { input: object }) => {
    const { ConsumedCapacity } = (await client.send(command as never)) as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] };
    return [ConsumedCapacity ?? []].flat().reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
  };
  const TableName = "c-Items";
  // `#state`, `#shard`: reserved words in DynamoDB's expressions.
  const set = (expression: string, values: Record<string, string>) =>
    new UpdateItemCommand({
      TableName,
      Key: { id: { S: "a" } },
      UpdateExpression: expression,
      ...(expression.includes("#") ? { ExpressionAttributeNames: Object.fromEntries(["state", "shard"].filter((n) => expression.includes(`#${n}`)).map((n) => [`#${n}`, n])) } : {}),
      ExpressionAttributeValues: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { S: v }])),
      ReturnConsumedCapacity: "TOTAL",
    });

  // Into the table and both indexes: 1 + 1 + 1.
  assert.equal(await units(new PutItemCommand({ TableName, Item: { id: { S: "a" }, state: { S: "queued" }, shard: { S: "s1" } }, ReturnConsumedCapacity: "TOTAL" })), 3);
  // byState's key changes (its entry deleted and put: 2); byShard's keys stay, nothing it holds changed: 0.
  assert.equal(await units(set("SET #state = :s", { ":s": "building" })), 3);
  // An attribute only byState projects: 1 + 1.
  assert.equal(await units(set("SET note = :n", { ":n": "a note" })), 2);
  // Out of byShard (1), byState's entry rewritten for the attribute it projects (1): 1 + 2.
  assert.equal(await units(set("REMOVE #shard SET note = :n", { ":n": "another" })), 3);
  // Out of the table and byState: 1 + 1.
  assert.equal(await units(new DeleteItemCommand({ TableName, Key: { id: { S: "a" } }, ReturnConsumedCapacity: "TOTAL" })), 2);
  // A batch: two items into the table and both indexes, one into the table alone.
  const put = (id: string, extra: Record<string, { S: string }>) => ({ PutRequest: { Item: { id: { S: id }, ...extra } } });
  const batch = new BatchWriteItemCommand({
    RequestItems: { [TableName]: [put("b", { state: { S: "queued" }, shard: { S: "s1" } }), put("c", { state: { S: "queued" }, shard: { S: "s2" } }), put("d", {})] },
    ReturnConsumedCapacity: "TOTAL",
  });
  assert.equal(await units(batch), 7);
  // Without ReturnConsumedCapacity nothing is reported, and the write is made as before.
  assert.equal(await units(new PutItemCommand({ TableName, Item: { id: { S: "e" }, state: { S: "queued" } } })), 0);
});
