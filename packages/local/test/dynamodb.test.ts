import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
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
