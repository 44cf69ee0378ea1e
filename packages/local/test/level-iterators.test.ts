/**
 * dynalite's Queries and Scans close their LevelDB iterators (src/level-iterator-return.mjs):
 * dynalite runs here in this process on a memory store, as its thread runs it, and every
 * iterator abstract-level opens is counted against those closed.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { CreateTableCommand, DynamoDBClient, PutItemCommand, QueryCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
// @ts-expect-error dynalite ships no type declarations
import dynalite from "dynalite";
// @ts-expect-error plain JavaScript (dynalite's thread imports it), no declarations
import { closeIteratorsOnReturn, dynaliteAbstractLevel } from "../src/level-iterator-return.mjs";

interface IteratorBase {
  close(): Promise<void>;
  return?: () => Promise<void>;
}

const abstractLevel = dynaliteAbstractLevel() as { AbstractIterator: { prototype: object }; AbstractLevel: { prototype: Record<string, (...args: unknown[]) => unknown> } };
const base = Object.getPrototypeOf(abstractLevel.AbstractIterator.prototype) as IteratorBase;

/** Counts iterators made by every abstract-level database (sublevels included) and those closed. */
function countIterators() {
  const counts = { opened: 0, closed: 0 };
  const level = abstractLevel.AbstractLevel.prototype;
  const originals = Object.fromEntries(["iterator", "keys", "values"].map((name) => [name, level[name]!]));
  for (const [name, original] of Object.entries(originals)) {
    level[name] = function (this: unknown, ...args: unknown[]) {
      const made = original.apply(this, args) as IteratorBase;
      counts.opened++;
      const close = made.close.bind(made);
      made.close = async () => {
        counts.closed++;
        made.close = close;
        return close();
      };
      return made;
    };
  }
  return { counts, restore: () => Object.assign(level, originals) };
}

describe("dynalite's LevelDB iterators", () => {
  let server: { listen(port: number, host: string, cb: () => void): void; close(cb: () => void): void; address(): AddressInfo };
  let client: DynamoDBClient;
  const hadReturn = typeof base.return === "function";

  before(async () => {
    server = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address();
    client = new DynamoDBClient({ endpoint: `http://127.0.0.1:${port}`, region: "us-east-1", credentials: { accessKeyId: "l", secretAccessKey: "l" } });
    await client.send(
      new CreateTableCommand({
        TableName: "edges",
        KeySchema: [{ AttributeName: "inputDrv", KeyType: "HASH" }, { AttributeName: "dependent", KeyType: "RANGE" }],
        AttributeDefinitions: [{ AttributeName: "inputDrv", AttributeType: "S" }, { AttributeName: "dependent", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    for (let i = 0; i < 5; i++) await client.send(new PutItemCommand({ TableName: "edges", Item: { inputDrv: { S: "hub" }, dependent: { S: `d${i}` } } }));
  });
  after(async () => {
    client?.destroy();
    await new Promise<void>((resolve) => server?.close(resolve));
    if (!hadReturn) delete base.return;
  });

  const reads = async () => {
    // Read to the end, cut short by a Limit, and finding nothing: each way a read ends.
    await client.send(new QueryCommand({ TableName: "edges", KeyConditionExpression: "inputDrv = :i", ExpressionAttributeValues: { ":i": { S: "hub" } }, ConsistentRead: true }));
    await client.send(new QueryCommand({ TableName: "edges", KeyConditionExpression: "inputDrv = :i", ExpressionAttributeValues: { ":i": { S: "hub" } }, Limit: 2 }));
    await client.send(new QueryCommand({ TableName: "edges", KeyConditionExpression: "inputDrv = :i", ExpressionAttributeValues: { ":i": { S: "none" } } }));
    await client.send(new ScanCommand({ TableName: "edges", Limit: 3 }));
  };

  it("are left open by dynalite's own code (what the patch is for: if this fails, dynalite or abstract-level changed — see whether it is still needed)", async () => {
    assert.equal(hadReturn, false, "abstract-level's iterators have a return() of their own now");
    const { counts, restore } = countIterators();
    try {
      await reads();
    } finally {
      restore();
    }
    assert.ok(counts.opened >= 4, `iterators opened: ${counts.opened}`);
    assert.ok(counts.closed < counts.opened, `without return(), ${counts.closed} of ${counts.opened} were closed`);
  });

  it("are all closed once iterators close on return(), however the read ends", async () => {
    closeIteratorsOnReturn(abstractLevel);
    closeIteratorsOnReturn(abstractLevel); // idempotent
    const { counts, restore } = countIterators();
    try {
      await reads();
      // A closed iterator's close() settles when its stream's destroy has run: a turn of the loop later at most.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      restore();
    }
    assert.ok(counts.opened >= 4, `iterators opened: ${counts.opened}`);
    assert.equal(counts.closed, counts.opened, `${counts.closed} of ${counts.opened} closed`);
  });
});
