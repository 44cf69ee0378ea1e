import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import {
  attributeKey,
  jobStatusKey,
  localResourceName,
  exactCountFields,
  logChunk,
  repositoryRefKey,
  type BuildLogItem,
  type DerivationItem,
  type JobAttributeItem,
  type JobDerivationItem,
  type JobItem,
  type TableName,
} from "@nimbus/service";
import { storeHashOf } from "./generated-paths.ts";


export interface SeededJob {
  jobId: string;
  /** Sorted, as the API lists them. */
  drvPaths: string[];
  /** The derivation that has the long log. */
  loggedDrv: string;
  /** Its log, every line in order. */
  logLines: string[];
}

/**
 * Writes a finished job whose `rows` derivations all failed (store hashes spread like Nix's, each also an
 * attribute `packages.x86_64-linux.pkg-<i>`) straight into the local stack's tables, with a
 * build log of `logMegabytes` for the first — a job too big to build for a test or the bench.
 */
export async function seedFailedJob(
  dynamodbEndpoint: string,
  options: { jobId: string; rows: number; logMegabytes?: number; createdAt?: string },
): Promise<SeededJob> {
  const documents = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: dynamodbEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  const { jobId, rows } = options;
  const at = options.createdAt ?? new Date().toISOString();
  try {
    const job: JobItem = {
      jobId,
      listKey: "job",
      repository: "acme/monorepo",
      ref: "refs/heads/main",
      commit: "b".repeat(40),
      cloneUrl: "https://github.com/acme/monorepo.git",
      trigger: { event: "push", sender: "seed" },
      status: "failed",
      createdAt: at,
      updatedAt: at,
      finishedAt: at,
      evaluation: { status: "succeeded", taskId: `eval-${jobId}`, agent: "seed" },
      repositoryRef: repositoryRefKey("acme/monorepo", "refs/heads/main"),
      // As a finished job keeps them (storage/job-counts.ts).
      countsKept: true,
      ...exactCountFields({ failed: rows }),
    };
    await put(documents, "Jobs", [job]);
    // Hashes from the job id and the row: spread like Nix's, the same in every run (a jump to the middle lands on the same rows).
    const drvPaths = Array.from({ length: rows }, (_, i) => `/nix/store/${storeHashOf(`${jobId}/${i}`)}-pkg-${i}.drv`);
    for (let i = 0; i < rows; i += 5_000) {
      const slice = drvPaths.slice(i, i + 5_000);
      await put(
        documents,
        "Derivations",
        slice.map(
          (drvPath, j): DerivationItem => ({
            drvPath,
            system: "x86_64-linux",
            requiredFeatures: [],
            outputs: { out: drvPath.replace(/\.drv$/, "") },
            status: "failed",
            queueKey: "x86_64-linux",
            attempt: 0,
            builtBy: { hostname: `builder-${(i + j) % 8}`, connectionId: "c", labels: {} },
            failure: { reason: "builder failed with exit code 2", exitCode: 2 },
            createdAt: at,
            updatedAt: at,
            finishedAt: at,
          }),
        ),
      );
      await put(documents, "JobDerivations", slice.map((drvPath): JobDerivationItem => ({ jobId, drvPath, status: "failed", jobStatus: jobStatusKey(jobId, "failed") })));
      await put(
        documents,
        "JobAttributes",
        slice.map((drvPath, j): JobAttributeItem => {
          const path = ["packages", "x86_64-linux", `pkg-${i + j}`];
          return { jobId, attribute: attributeKey(path), path, drvPath };
        }),
      );
    }
    // The log in ~32 KB chunks, as agents send it.
    const line = "cc -O2 -Wall -c src/module.c -o build/module.o # " + "x".repeat(50);
    const perChunk = Math.floor(32_000 / (line.length + 1));
    const chunks = Math.ceil(((options.logMegabytes ?? 0) * 1024 * 1024) / (perChunk * (line.length + 1)));
    const logs: BuildLogItem[] = Array.from({ length: chunks }, (_, seq) => ({
      drvPath: drvPaths[0]!,
      chunk: logChunk(0, seq),
      lines: Array.from({ length: perChunk }, (_, n) => `${line} ${seq * perChunk + n}`),
    }));
    await put(documents, "BuildLogs", logs);
    return { jobId, drvPaths: [...drvPaths].sort(), loggedDrv: drvPaths[0]!, logLines: logs.flatMap((l) => l.lines) };
  } finally {
    documents.destroy();
  }
}

/** BatchWrite in 25s, 8 at a time (dynalite is one process: more only queue up). */
async function put(documents: DynamoDBDocumentClient, table: TableName, items: object[]): Promise<void> {
  const batches = Array.from({ length: Math.ceil(items.length / 25) }, (_, i) => items.slice(i * 25, i * 25 + 25));
  for (let i = 0; i < batches.length; i += 8) {
    await Promise.all(
      batches.slice(i, i + 8).map(async (batch) => {
        let request: Record<string, any> | undefined = {
          [localResourceName("nimbus", "local", table)]: batch.map((Item) => ({ PutRequest: { Item } })),
        };
        while (request && Object.keys(request).length > 0) {
          request = (await documents.send(new BatchWriteCommand({ RequestItems: request }))).UnprocessedItems;
        }
      }),
    );
  }
}
