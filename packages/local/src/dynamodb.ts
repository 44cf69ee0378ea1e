/** DynamoDB locally: dynalite with its LevelDB store under `<dataDir>/dynamodb`. */
import { mkdir } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  type AttributeDefinition,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type ScalarAttributeType,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import type { TableSpec } from "@nimbus/service/resource-specs";

export interface DynamoServer {
  endpoint: string;
  port: number;
  /** Stops serving and closes LevelDB, so a later start can open the same directory. */
  stop(): Promise<void>;
}

/**
 * Starts dynalite on a worker thread of its own: its request parsing and LevelDB work then run
 * beside the handlers (one process still, two cores used), instead of queueing behind them.
 */
export async function startDynamo(options: {
  dataDir: string;
  host: string;
  port: number;
  /** Told once if the thread fails or exits other than through `stop()`: every request fails from then on. */
  onFailure?: (message: string) => void;
}): Promise<DynamoServer> {
  const path = join(options.dataDir, "dynamodb");
  await mkdir(path, { recursive: true });
  // Plain JavaScript: no TypeScript loader (the process's --import) in the thread.
  const worker = new Worker(new URL("./dynamo-worker.mjs", import.meta.url), { workerData: { path, host: options.host, port: options.port }, execArgv: [] });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`dynalite's thread exited (code ${code}) before it listened`)));
    worker.on("message", (message: WorkerMessage) => {
      if (message.type === "listening") resolve(message.port);
      if (message.type === "error") reject(Object.assign(new Error(`dynalite could not listen on ${options.host}:${options.port}: ${message.message}`), { code: message.code }));
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  // After a start, a thread that dies says so: without this, requests just fail (ECONNREFUSED) with no cause anywhere.
  let stopping = false;
  let failed: string | undefined;
  const fail = (why: string) => {
    if (stopping || failed) return;
    failed = `DynamoDB stopped: dynalite's thread ${why}; every request fails from now on — restart the stack (the data in ${path} is kept)`;
    options.onFailure?.(failed);
  };
  worker.on("error", (error) => fail(`failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`));
  worker.on("exit", (code) => fail(`exited (code ${code})`));
  const server: DynamoServer = {
    endpoint: `http://${options.host}:${port}`,
    port,
    stop: async () => {
      stopping = true;
      const stopped = new Promise<WorkerMessage>((resolve) => worker.on("message", (m: WorkerMessage) => m.type === "stopped" && resolve(m)));
      worker.postMessage({ type: "stop" });
      const message = await Promise.race([stopped, exited.then(() => undefined)]);
      await exited;
      if (message?.type === "stopped" && message.message) throw new Error(`stopping dynalite failed: ${message.message}`);
    },
  };
  threads.set(server, worker);
  return server;
}

const threads = new WeakMap<DynamoServer, Worker>();

/** A fault for tests: dynalite's thread throws `reason`, as a crash inside it would. */
export function crashDynamo(server: DynamoServer, reason: string): void {
  threads.get(server)?.postMessage({ type: "crash", reason });
}

type WorkerMessage =
  | { type: "listening"; port: number }
  | { type: "error"; message: string; code?: string }
  | { type: "stopped"; message?: string };

const attributeTypes: Record<TableSpec["fields"][string], ScalarAttributeType> = {
  string: "S",
  number: "N",
  binary: "B",
};

function keySchema(index: { hashKey: string; rangeKey?: string }): KeySchemaElement[] {
  const keys: KeySchemaElement[] = [{ AttributeName: index.hashKey, KeyType: "HASH" }];
  if (index.rangeKey) keys.push({ AttributeName: index.rangeKey, KeyType: "RANGE" });
  return keys;
}

/** A table on disk no longer matches resource-specs.ts, and dynalite cannot add or change indexes. */
export class TableSchemaError extends Error {
  override name = "TableSchemaError";
}

const describeKeys = (keys: KeySchemaElement[] | undefined) =>
  (keys ?? []).map((k) => `${k.KeyType}:${k.AttributeName}`).join(",");

/** Differences between a table's key schema and GSIs on disk and its spec, in words. */
function schemaDifferences(table: TableDescription, spec: TableSpec): string[] {
  const differences: string[] = [];
  if (describeKeys(table.KeySchema) !== describeKeys(keySchema(spec.primaryIndex))) {
    differences.push(`primary key is ${describeKeys(table.KeySchema)}, spec wants ${describeKeys(keySchema(spec.primaryIndex))}`);
  }
  const onDisk = new Map((table.GlobalSecondaryIndexes ?? []).map((i) => [i.IndexName ?? "", describeKeys(i.KeySchema)]));
  for (const [name, index] of Object.entries(spec.globalIndexes ?? {})) {
    const wanted = describeKeys(keySchema(index));
    const found = onDisk.get(name);
    if (found === undefined) differences.push(`index ${name} is missing`);
    else if (found !== wanted) differences.push(`index ${name} is ${found}, spec wants ${wanted}`);
    onDisk.delete(name);
  }
  for (const name of onDisk.keys()) differences.push(`index ${name} is no longer in the spec`);
  return differences;
}

/**
 * Creates each table that does not exist yet (PAY_PER_REQUEST, GSIs projecting ALL) and checks
 * existing ones still match. TTL is skipped: dynalite lacks it.
 */
export async function ensureTables(
  endpoint: string,
  tables: Record<string, TableSpec>,
  tableName: (name: string) => string,
): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  try {
    const existing = new Set<string>();
    let start: string | undefined;
    do {
      const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
      for (const name of page.TableNames ?? []) existing.add(name);
      start = page.LastEvaluatedTableName;
    } while (start);

    for (const [name, spec] of Object.entries(tables)) {
      const TableName = tableName(name);
      if (existing.has(TableName)) {
        const { Table } = await client.send(new DescribeTableCommand({ TableName }));
        const differences = Table ? schemaDifferences(Table, spec) : [];
        if (differences.length > 0) {
          throw new TableSchemaError(
            `local table ${TableName} was created from an older schema (${differences.join("; ")}); ` +
              "dynalite cannot change indexes, so delete the data directory's dynamodb/ folder to recreate it (local data is lost)",
          );
        }
        continue;
      }
      const definitions: AttributeDefinition[] = Object.entries(spec.fields).map(([AttributeName, type]) => ({
        AttributeName,
        AttributeType: attributeTypes[type],
      }));
      const indexes: GlobalSecondaryIndex[] = Object.entries(spec.globalIndexes ?? {}).map(([IndexName, index]) => ({
        IndexName,
        KeySchema: keySchema(index),
        Projection: { ProjectionType: index.projection === "keys-only" ? "KEYS_ONLY" : "ALL" },
      }));
      await client.send(
        new CreateTableCommand({
          TableName,
          AttributeDefinitions: definitions,
          KeySchema: keySchema(spec.primaryIndex),
          BillingMode: "PAY_PER_REQUEST",
          GlobalSecondaryIndexes: indexes.length > 0 ? indexes : undefined,
        }),
      );
    }
  } finally {
    client.destroy();
  }
}
