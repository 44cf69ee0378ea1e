/** DynamoDB locally: dynalite with its LevelDB store under `<dataDir>/dynamodb`. */
import { mkdir } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
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
import dynalite from "dynalite";
import type { TableSpec } from "@nimbus/service/resource-specs";

export interface DynamoServer {
  endpoint: string;
  port: number;
  /** Stops serving and closes LevelDB, so a later start can open the same directory. */
  stop(): Promise<void>;
}

export async function startDynamo(options: { dataDir: string; host: string; port: number }): Promise<DynamoServer> {
  const path = join(options.dataDir, "dynamodb");
  await mkdir(path, { recursive: true });
  // Tables are usable at once: nothing locally waits for CREATING → ACTIVE.
  const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await listen(server, options.host, options.port);
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://${options.host}:${port}`,
    port,
    stop: () => closeDynalite(server),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

function closeDynalite(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // SDK clients keep connections alive; they would hold close() (and LevelDB) open.
    server.closeAllConnections();
  });
}

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
        Projection: { ProjectionType: "ALL" },
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
