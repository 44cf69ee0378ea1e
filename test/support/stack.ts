import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { CreateTokenResponse } from "@nimbus/protocol";
import { startLocalStack, type LocalStack } from "@nimbus/local";
import { localResourceName, type TableName } from "@nimbus/service";

export interface TestStack extends LocalStack {
  /** Calls the JSON API as the admin (or with `token`); returns status and parsed JSON. */
  api(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: any }>;
  createToken(name?: string): Promise<CreateTokenResponse>;
  /** Every item of a table, sorted, for before/after comparisons. */
  scan(table: TableName): Promise<Record<string, unknown>[]>;
  /** One item as stored (string sets stay Sets), read consistently. */
  getItem(table: TableName, key: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
  /** Writes whole items, one at a time, as a test's way to set up state the flows would take long to make. */
  put(table: TableName, items: Record<string, unknown>[]): Promise<void>;
  /** Writes items as they are (batches of 25), as a test's way to stand for earlier history. */
  putItems(table: TableName, items: Record<string, unknown>[]): Promise<void>;
  /** Deletes one item, as a test's way to stand for a write whose follow-up never happened. */
  deleteItem(table: TableName, key: Record<string, string>): Promise<void>;
  /** Overwrites attributes of one item, as a test's way to age or damage state. */
  setAttributes(table: TableName, key: Record<string, string>, values: Record<string, unknown>): Promise<void>;
  cleanup(): Promise<void>;
}

const API_TIMEOUT_MS = 60_000;

export interface TestStackOptions extends Partial<Parameters<typeof startLocalStack>[0]> {
  /** Secrets written to `<data dir>/secrets.json` before the stack starts (e.g. a GitHub App's id and key). */
  secrets?: Record<string, string>;
}

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const { secrets, ...stackOptions } = options;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "nimbus-test-")));
  if (secrets) await writeFile(join(dataDir, "secrets.json"), `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  const stack = await startLocalStack({ port: 0, log: () => {}, ...stackOptions, dataDir });
  const documents = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: stack.dynamodbEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
  );
  const api: TestStack["api"] = async (method, path, body, token) => {
    const headers: Record<string, string> = {};
    const bearer = token === undefined ? stack.adminToken : token;
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    // No call waits for ever: a stack too busy to answer within a minute fails the test, saying which call.
    const response = await fetch(`${stack.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    }).catch((error: unknown) => {
      throw new Error(`${method} ${path}: no answer within ${API_TIMEOUT_MS / 1000} s (${String(error)})`);
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    ...stack,
    api,
    async createToken(name) {
      const { status, body } = await api("POST", "/api/tokens", name ? { name } : {});
      if (status !== 201) throw new Error(`token create failed: ${status} ${JSON.stringify(body)}`);
      return CreateTokenResponse.parse(body);
    },
    async scan(table) {
      // Every page: a Scan stops at 1 MB, which a big run's tables pass (a check that read one
      // page would call the rest "never registered").
      const items: Record<string, unknown>[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await documents.send(
          new ScanCommand({ TableName: localResourceName("nimbus", "local", table), ConsistentRead: true, ExclusiveStartKey: start }),
        );
        items.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start);
      return items.map((i) => JSON.parse(JSON.stringify(i))).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    },
    async getItem(table, key) {
      return (await documents.send(new GetCommand({ TableName: localResourceName("nimbus", "local", table), Key: key, ConsistentRead: true }))).Item;
    },
    async put(table, items) {
      for (const item of items) await documents.send(new PutCommand({ TableName: localResourceName("nimbus", "local", table), Item: item }));
    },
    async putItems(table, items) {
      const TableName = localResourceName("nimbus", "local", table);
      for (let i = 0; i < items.length; i += 25) {
        let request: Record<string, any> | undefined = { [TableName]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) };
        while (request && Object.keys(request).length > 0) {
          request = (await documents.send(new BatchWriteCommand({ RequestItems: request }))).UnprocessedItems;
        }
      }
    },
    async deleteItem(table, key) {
      await documents.send(new DeleteCommand({ TableName: localResourceName("nimbus", "local", table), Key: key }));
    },
    async setAttributes(table, key, values) {
      const names = Object.keys(values);
      await documents.send(
        new UpdateCommand({
          TableName: localResourceName("nimbus", "local", table),
          Key: key,
          UpdateExpression: `SET ${names.map((_, i) => `#a${i} = :v${i}`).join(", ")}`,
          ExpressionAttributeNames: Object.fromEntries(names.map((n, i) => [`#a${i}`, n])),
          ExpressionAttributeValues: Object.fromEntries(names.map((n, i) => [`:v${i}`, values[n]])),
        }),
      );
    },
    async cleanup() {
      await stack.stop();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The first pause of `eventually`, and its longest: each pause is half again the last. */
const POLL_FIRST_MS = 50;
const POLL_MAX_MS = 500;

/**
 * Polls until `check` returns a value other than undefined, or fails after `timeoutMs`; `what`
 * may be a function, read only when it fails (say, what an agent printed by then). Often at
 * first, then less often: a check often scans a table or reads a job's view, and a long wait
 * polled every 100 ms took CPU from the stack it waits for.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string | (() => string), timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let pause = POLL_FIRST_MS;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
    pause = Math.min(POLL_MAX_MS, pause * 1.5);
  }
  throw new Error(`timed out waiting for ${typeof what === "function" ? what() : what}${last ? `: ${String(last)}` : ""}`);
}

/** Takes every message off the build queue of `queueKey` (as agents reading them would); how many there were. */
export async function drainQueue(stack: TestStack, queueKey: string): Promise<number> {
  const queue = (await stack.scan("BuildQueues")).find((q) => q.queueKey === queueKey);
  if (!queue) return 0;
  const sqs = new SQSClient({ endpoint: stack.sqsEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" }, useQueueUrlAsEndpoint: false });
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: String(queue.queueName) }));
    let count = 0;
    for (;;) {
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      if (Messages.length === 0) return count;
      for (const m of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
      count += Messages.length;
    }
  } finally {
    sqs.destroy();
  }
}
