/**
 * `npm run bench:builtin-cache`: the built-in cache's bulk presence query (`POST /cache/missing`,
 * 10,000 paths in one request, answered from the index) beside asking the same paths one by
 * one (`HEAD /cache/<hash>.narinfo`, as Nix does), through the whole local stack: its HTTP
 * server, the very same Lambda handlers, dynalite. It prints numbers and writes
 * bench/results/builtin-cache.json; it never asserts speed.
 *
 * Half the paths are in the index (written straight into dynalite, used just now so the query
 * marks nothing), half are not. One by one is measured twice: strictly one request after the
 * other (Nix's own lookups during a dry run), and 64 in flight over kept-alive connections (the
 * best a client can do without a bulk endpoint). Locally a request costs no network time; over
 * the internet every one-by-one request also pays a round trip (20–50 ms), the bulk one a few.
 *
 * Knobs (environment): NIMBUS_BENCH_BUILTIN_PATHS (10000), NIMBUS_BENCH_BUILTIN_RUNS (3).
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { encodeNixBase32 } from "@nimbus/cache";
import { localTableName, startLocalStack } from "@nimbus/local";
import { CacheMissingResponse } from "@nimbus/cache";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const knob = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return value;
};
const PATHS = knob("NIMBUS_BENCH_BUILTIN_PATHS", 10_000);
const RUNS = knob("NIMBUS_BENCH_BUILTIN_RUNS", 3);
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const dataDir = await mkdtemp(join(os.tmpdir(), "nimbus-bench-builtin-"));
  const stack = await startLocalStack({ port: 0, dataDir, sweepIntervalMs: 0, log: () => {} });
  try {
    const paths = Array.from({ length: PATHS }, (_, i) => `/nix/store/${encodeNixBase32(randomBytes(20))}-bench-${i}`);
    const present = paths.filter((_, i) => i % 2 === 0);
    await seed(stack.dynamodbEndpoint, present);
    const token = await readToken(stack.url, stack.adminToken);
    const auth = `Bearer ${token}`;

    const bulk: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const start = process.hrtime.bigint();
      const response = await fetch(`${stack.url}/cache/missing`, { method: "POST", headers: { authorization: auth, "content-type": "application/json" }, body: JSON.stringify({ storePaths: paths }) });
      const { missing } = CacheMissingResponse.parse(await response.json());
      bulk.push(seconds(start));
      if (missing.length !== PATHS - present.length) throw new Error(`the bulk query said ${missing.length} missing, expected ${PATHS - present.length}`);
    }
    console.log(`bulk POST /cache/missing, ${PATHS} paths in one request: ${round(median(bulk))} s (median of ${RUNS}: ${bulk.map((s) => round(s)).join(", ")})`);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const head = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const request = http.request(`${stack.url}/cache/${path.slice(11, 43)}.narinfo`, { method: "HEAD", agent, headers: { authorization: auth } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        request.on("error", reject);
        request.end();
      });
    const probe = async (concurrency: number) => {
      let next = 0;
      let found = 0;
      const start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < paths.length) {
            if ((await head(paths[next++]!)) === 200) found++;
          }
        }),
      );
      const s = seconds(start);
      if (found !== present.length) throw new Error(`one by one found ${found} present, expected ${present.length}`);
      return s;
    };
    const sequential = await probe(1);
    console.log(`one by one, HEAD <hash>.narinfo, one at a time: ${round(sequential)} s (${round((sequential / PATHS) * 1000)} ms a path)`);
    const parallel = await probe(64);
    console.log(`one by one, HEAD <hash>.narinfo, 64 at a time: ${round(parallel)} s`);
    agent.destroy();
    console.log(`the bulk query is ${round(sequential / median(bulk), 1)}× faster than one at a time, ${round(parallel / median(bulk), 1)}× faster than 64 at a time`);

    const output = {
      date: new Date().toISOString(),
      cpus: os.cpus().length,
      paths: PATHS,
      present: present.length,
      bulk: { requests: 1, seconds: round(median(bulk)), runs: bulk.map((s) => round(s)) },
      oneByOne: { requests: PATHS, sequentialSeconds: round(sequential), concurrent64Seconds: round(parallel) },
    };
    await mkdir(RESULTS, { recursive: true });
    await writeFile(join(RESULTS, "builtin-cache.json"), `${JSON.stringify(output, null, 2)}\n`);
    console.log(`\nresults: ${join(RESULTS, "builtin-cache.json")}`);
  } finally {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Published paths, written straight into the index (as if agents had pushed them just now). */
async function seed(endpoint: string, storePaths: string[]): Promise<void> {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }));
  const now = new Date().toISOString();
  const hash = `sha256:${encodeNixBase32(randomBytes(32))}`;
  const items = storePaths.map((storePath) => ({
    storeHash: storePath.slice(11, 43),
    storePath,
    fileKey: `nar/${hash.slice(7)}.nar.zst`,
    compression: "zstd",
    fileHash: hash,
    fileSize: 100,
    narHash: hash,
    narSize: 200,
    references: [],
    createdAt: now,
    lastUsedAt: now,
    useShard: "u",
  }));
  const table = localTableName("CachePaths");
  for (let i = 0; i < items.length; i += 25) {
    let request: Record<string, unknown[]> | undefined = { [table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) };
    while (request && Object.keys(request).length > 0) {
      const result = await client.send(new BatchWriteCommand({ RequestItems: request as never }));
      request = result.UnprocessedItems as typeof request;
    }
  }
  client.destroy();
}

async function readToken(url: string, adminToken: string): Promise<string> {
  const response = await fetch(`${url}/api/cache/tokens`, { method: "POST", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ access: "read", name: "bench" }) });
  return ((await response.json()) as { token: string }).token;
}

await main();
