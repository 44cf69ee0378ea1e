/**
 * The benchmark's own calls to the stack — the JSON API as the admin, and the emulators
 * through SDK clients of its own — so none of them is counted as the service's work.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { localTableName, type LocalStack } from "@nimbus/local";

const LOCAL_CLIENT = { region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } };

/** What the bench reads of `GET /api/jobs/{id}` (loosely, so a schema change does not stop it). */
export interface JobSnapshot {
  status: string;
  finishedAt?: string;
  evaluation?: { status?: string; error?: string; agent?: string };
  counts?: Record<string, number>;
}

/**
 * What the bench reads of a Derivations item, loosely: the service's own type may change
 * (e.g. lists stored as arrays or string sets) without the benchmark breaking.
 */
export interface DerivationRow {
  drvPath: string;
  status: string;
  queueKey?: string;
  attempt?: number;
  /** The inputs it still waits for: on its item, and rows of the PendingInputs table (gathered here as `pendingRows`). */
  pendingInputs?: Iterable<string>;
  pendingRows?: string[];
  version?: number;
  history?: unknown[];
  pendingParts?: Iterable<string>;
  queuedAt?: string;
  updatedAt?: string;
  lease?: { taskId?: string; connectionId?: string; sessionId?: string };
}

export interface AgentRow {
  hostname: string;
  runningTasks?: number;
  concurrentTasks?: number;
}

export class StackReads {
  private readonly documents: DynamoDBDocumentClient;
  private readonly queues: SQSClient;

  constructor(private readonly stack: LocalStack) {
    this.documents = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: stack.dynamodbEndpoint, ...LOCAL_CLIENT }));
    // As the service does: send to the endpoint, not the queue URL's host (fauxqs's need not resolve).
    this.queues = new SQSClient({ endpoint: stack.sqsEndpoint, ...LOCAL_CLIENT, useQueueUrlAsEndpoint: false });
  }

  private async api<T>(method: string, path: string, expected: number, body?: unknown): Promise<T> {
    const response = await fetch(`${this.stack.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.stack.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== expected) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }

  async createToken(name: string): Promise<string> {
    const { token } = await this.api<{ token: string }>("POST", "/api/tokens", 201, { name });
    return token;
  }

  job(jobId: string): Promise<JobSnapshot> {
    return this.api<JobSnapshot>("GET", `/api/jobs/${jobId}`, 200);
  }

  async agents(): Promise<AgentRow[]> {
    return (await this.api<{ agents?: AgentRow[] }>("GET", "/api/agents", 200)).agents ?? [];
  }

  private async scan<T>(table: string): Promise<T[]> {
    const items: T[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(new ScanCommand({ TableName: localTableName(table), ConsistentRead: true, ExclusiveStartKey }));
      items.push(...((page.Items ?? []) as T[]));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items;
  }

  /** An item's size as stored, near enough (its JSON, sets as lists); undefined when there is none. */
  async itemBytes(table: string, key: Record<string, unknown>): Promise<number | undefined> {
    const { Item } = await this.documents.send(new GetCommand({ TableName: localTableName(table), Key: key, ConsistentRead: true }));
    return Item ? JSON.stringify(Item, (_k, value: unknown) => (value instanceof Set ? [...value] : value)).length : undefined;
  }

  async derivations(): Promise<DerivationRow[]> {
    const pending = new Map<string, string[]>();
    for (const row of await this.scan<{ drvPath: string; inputDrv: string }>("PendingInputs")) {
      pending.set(row.drvPath, [...(pending.get(row.drvPath) ?? []), row.inputDrv]);
    }
    return (await this.scan<DerivationRow>("Derivations")).map((item) => ({ ...item, pendingRows: pending.get(item.drvPath) ?? [] }));
  }

  /** Build queue names as the request counter shows them (no app-stage prefix) → "build queue <system|features>". */
  async buildQueueLabels(): Promise<Map<string, string>> {
    const prefix = localTableName("");
    const rows = await this.scan<{ queueKey: string; queueName: string }>("BuildQueues");
    return new Map(rows.map((q) => [q.queueName.startsWith(prefix) ? q.queueName.slice(prefix.length) : q.queueName, `build queue ${q.queueKey}`]));
  }

  /** Each build queue's visible and in-flight message counts. */
  async buildQueueDepths(): Promise<string[]> {
    const rows = await this.scan<{ queueKey: string; queueName: string }>("BuildQueues");
    return Promise.all(
      rows.map(async (q) => {
        const { QueueUrl } = await this.queues.send(new GetQueueUrlCommand({ QueueName: q.queueName }));
        const { Attributes = {} } = await this.queues.send(
          new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
        );
        return `${q.queueKey} ${Attributes.ApproximateNumberOfMessages ?? "?"} visible, ${Attributes.ApproximateNumberOfMessagesNotVisible ?? "?"} in flight`;
      }),
    );
  }

  close(): void {
    this.documents.destroy();
    this.queues.destroy();
  }
}
