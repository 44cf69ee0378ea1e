/**
 * One local stack for one scenario: fresh emulators in a temporary directory, the handlers'
 * SDK clients counted, an agent token, and a stop that never hangs the bench. One stack per
 * process (the handlers read their endpoints from the environment once), so every scenario
 * runs in a process of its own (bench/scenario.ts).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { ListQueuesCommand } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { importHandlerFrom, localTableName, startLocalStack, type LocalStack } from "@nimbus/local";
// The handlers' own SDK clients (module singletons), a subpath export of @nimbus/service: the
// same module (same real path) the handlers load.
import { dynamo, gatewayManagement, sqs } from "@nimbus/service/aws-clients";
import { OUTSIDE_HANDLERS, RequestCounter } from "./request-counter.ts";
import { StackReads } from "./stack-reads.ts";

export class BenchError extends Error {
  override name = "BenchError";
}

export interface BenchStack {
  stack: LocalStack;
  reads: StackReads;
  counter: RequestCounter;
  /** Lines the stack logged (handler errors and the like), with when. */
  logLines: Array<{ at: number; line: string }>;
  /** An agent token ("bench"). */
  token: string;
  dataDir: string;
  close(): Promise<void>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function openBenchStack(): Promise<BenchStack> {
  const logLines: Array<{ at: number; line: string }> = [];
  // Left out: the JSON API (only the bench calls it) and requests made outside any handler.
  const counter = new RequestCounter((source) => source.startsWith("api/") || source === OUTSIDE_HANDLERS, localTableName(""));
  const dataDir = await mkdtemp(join(os.tmpdir(), "nimbus-bench-"));
  let stack: LocalStack | undefined;
  let reads: StackReads | undefined;
  // NIMBUS_BENCH_TRACE=<file>: every request the handlers made, as tab-separated lines, written when the stack closes.
  const traceFile = process.env["NIMBUS_BENCH_TRACE"];
  if (traceFile) counter.traceRequests();
  const close = async () => {
    reads?.close();
    if (traceFile) await writeFile(traceFile, counter.tracedRequests().map((r) => [r.invocation, r.source, r.key, r.start.toFixed(2), r.end.toFixed(2), r.error ?? ""].join("\t") + "\n").join(""));
    if (stack) {
      const stopped = await Promise.race([stack.stop().then(() => true), sleep(30_000).then(() => false)]).catch((error: unknown) => {
        console.error(`stopping the stack failed: ${String(error)}`);
        return true;
      });
      if (!stopped) console.error("the stack did not stop within 30 s");
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    stack = await startLocalStack({
      port: 0,
      dataDir,
      sweepIntervalMs: 0,
      log: (line) => logLines.push({ at: Date.now(), line }),
      resolveHandler: counter.wrapResolver(importHandlerFrom()),
    });
    reads = new StackReads(stack);
    // Count on the handlers' clients (created here if no handler has run yet: the same config).
    counter.attach("dynamodb", dynamo());
    counter.attach("sqs", sqs());
    counter.attach("gateway", gatewayManagement());
    await selfCheck(counter);
    const token = await reads.createToken("bench");
    return { stack, reads, counter, logLines, token, dataDir, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** One request through each counted client, outside handlers, must count exactly once. */
async function selfCheck(counter: RequestCounter): Promise<void> {
  await dynamo().send(new GetCommand({ TableName: localTableName("Jobs"), Key: { jobId: "bench-self-check" } }));
  await sqs().send(new ListQueuesCommand({ MaxResults: 1 }));
  const seen = counter.countsOf(OUTSIDE_HANDLERS);
  if (seen.dynamodb !== 1 || seen.sqs !== 1) {
    throw new BenchError(`the request counter is miscounting: one request each gave ${JSON.stringify(seen)}`);
  }
  // The cost model bills capacity units: an emulator that reports none would make DynamoDB look free.
  if (!(counter.capacityOf(OUTSIDE_HANDLERS).read > 0)) {
    throw new BenchError("DynamoDB reported no consumed capacity for a GetItem asked with ReturnConsumedCapacity TOTAL: the cost would be wrong");
  }
}

/** Resolves once `count` invocations of `source` have finished (a frame sent is handled asynchronously). */
export async function invocationsFinished(counter: RequestCounter, source: string, count: number, timeoutMs = 30_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = counter.requestsPerInvocationOf(source);
    if (list.length >= count) return list;
    if (Date.now() > deadline) throw new BenchError(`${source}: ${list.length} of ${count} invocation(s) finished within ${timeoutMs} ms`);
    await sleep(20);
  }
}
