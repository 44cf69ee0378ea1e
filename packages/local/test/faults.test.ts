import assert from "node:assert/strict";
import { test } from "node:test";
import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { Resource } from "sst";
import WebSocket from "ws";
import { FaultPlanError, localTableName, startLocalStack, type LocalStack, type LocalStackOptions } from "../src/index.ts";
import { FixtureHandlers, sleep, temporaryDirectory } from "./fixtures/handlers.ts";

// Fault injection for chaos runs: the local runtime fails the way AWS may, the handlers never know.

const fixtures = new FixtureHandlers();

async function withStack(options: Partial<LocalStackOptions>, body: (stack: LocalStack) => Promise<void>): Promise<void> {
  const dir = await temporaryDirectory();
  const stack = await startLocalStack({ port: 0, dataDir: dir.path, sweepIntervalMs: 0, resolveHandler: fixtures.resolve, log: () => {}, ...options });
  try {
    await body(stack);
  } finally {
    fixtures.reset();
    await stack.stop();
    await dir.remove();
  }
}

const table = () => localTableName("Tokens");
const put = (client: DynamoDBClient, id: string) => client.send(new PutItemCommand({ TableName: table(), Item: { tokenId: { S: id } } }));
const exists = async (client: DynamoDBClient, id: string) =>
  (await client.send(new GetItemCommand({ TableName: table(), Key: { tokenId: { S: id } }, ConsistentRead: true }))).Item !== undefined;

test("a handler that dies at an AWS request changes nothing after it, and its invocation fails at once", async () => {
  await withStack({ faults: { handlerDeath: 1, seed: 1 } }, async (stack) => {
    let afterDeath: unknown;
    let secondWrite: unknown;
    fixtures.on("functions/api/tokens-create.handler", async () => {
      const client = new DynamoDBClient({});
      try {
        await put(client, "first").catch((error: unknown) => (afterDeath = error));
        // The handler's own code goes on, but nothing it asks for reaches DynamoDB.
        await put(client, "second").catch((error: unknown) => (secondWrite = error));
      } finally {
        client.destroy();
      }
      return { statusCode: 201, body: "{}" };
    });
    const response = await fetch(`${stack.url}/api/tokens`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    assert.equal(response.status, 500, "the gateway answers as for a Lambda that timed out");
    await sleep(50);
    assert.equal((afterDeath as Error | undefined)?.name, "HandlerDeathError");
    assert.equal((secondWrite as Error | undefined)?.name, "HandlerDeathError");
    const counts = stack.faultCounts();
    assert.equal(counts.handlerDeaths, 1);
    assert.equal(counts.requestsRefused, 2, "each request failed once: the SDK did not retry into the dead invocation");
    // Outside any invocation, requests go through.
    const client = new DynamoDBClient({});
    try {
      assert.equal(await exists(client, "first"), false);
      assert.equal(await exists(client, "second"), false);
      await put(client, "outside");
      assert.equal(await exists(client, "outside"), true);
    } finally {
      client.destroy();
    }
  });
});

test("without a death plan, handlers make their requests as usual", async () => {
  await withStack({ faults: { duplicateFrame: 0, seed: 1 } }, async (stack) => {
    fixtures.on("functions/api/tokens-create.handler", async () => {
      const client = new DynamoDBClient({});
      try {
        await put(client, "kept");
        return { statusCode: 201, body: JSON.stringify({ kept: await exists(client, "kept") }) };
      } finally {
        client.destroy();
      }
    });
    const response = await fetch(`${stack.url}/api/tokens`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { kept: true });
    assert.equal(stack.faultCounts().handlerDeaths, 0);
  });
});

test("a frame may reach $default twice, and a message sent to SQS may be delivered twice", async () => {
  await withStack({ faults: { duplicateFrame: 1, duplicateMessage: 1, seed: 1 } }, async (stack) => {
    const socket = new WebSocket(stack.agentSocketUrl);
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    socket.send("one frame");
    await fixtures.waitFor("functions/socket/default.handler", () => fixtures.events("functions/socket/default.handler").length >= 2);
    const bodies = fixtures.events<{ body: string; requestContext: { requestId: string } }>("functions/socket/default.handler");
    assert.deepEqual(bodies.map((e) => e.body), ["one frame", "one frame"]);
    assert.notEqual(bodies[0]!.requestContext.requestId, bodies[1]!.requestContext.requestId);
    socket.terminate();
    assert.equal(stack.faultCounts().duplicateFrames, 1);

    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    try {
      const url = (Resource as unknown as Record<string, { url: string }>).Evaluations!.url;
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "work", MessageGroupId: "g", MessageDeduplicationId: "d1" }));
      const received: string[] = [];
      const deadline = Date.now() + 3_000;
      while (received.length < 2 && Date.now() < deadline) {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
        for (const m of Messages) {
          received.push(m.Body!);
          await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
        }
        await sleep(20);
      }
      assert.deepEqual(received, ["work", "work"], "the original, then its copy");
      assert.equal(stack.faultCounts().duplicateMessages, 1);
    } finally {
      sqs.destroy();
    }
  });
});

test("a fault plan with a chance outside 0..1 is refused before anything starts", async () => {
  const dir = await temporaryDirectory();
  try {
    await assert.rejects(
      startLocalStack({ port: 0, dataDir: dir.path, sweepIntervalMs: 0, resolveHandler: fixtures.resolve, log: () => {}, faults: { handlerDeath: 2 } }),
      (error: unknown) => error instanceof FaultPlanError && /handlerDeath must be a chance between 0 and 1/.test(error.message),
    );
  } finally {
    await dir.remove();
  }
});
