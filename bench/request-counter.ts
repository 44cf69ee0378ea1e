/**
 * Counts the AWS requests the handlers make, with an SDK middleware on the very clients they
 * use in-process, and tells who made each one: every handler invocation runs inside an
 * AsyncLocalStorage scope naming the handler (and, for agent frames, the message type), so
 * the benchmark's own API calls (polling the job) can be left out exactly.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { HandlerResolver } from "@nimbus/local";
import { summarize, type Summary } from "./stats.ts";

export const CLIENT_KINDS = ["dynamodb", "sqs", "gateway"] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];
export type Counts = Record<ClientKind, number>;

/** The part of an SDK v3 client's middleware stack this uses. */
interface CountableClient {
  middlewareStack: {
    add(
      middleware: (next: (args: any) => Promise<any>, context: any) => (args: any) => Promise<any>,
      options: { step: "initialize"; name: string },
    ): void;
  };
}

const MIDDLEWARE_NAME = "nimbusBenchCounter";
/** Requests made outside any handler invocation (only the benchmark's own). */
export const OUTSIDE_HANDLERS = "(outside handlers)";

const zero = (): Counts => ({ dynamodb: 0, sqs: 0, gateway: 0 });
const bump = (map: Map<string, Counts>, key: string, kind: ClientKind) => {
  let counts = map.get(key);
  if (!counts) map.set(key, (counts = zero()));
  counts[kind]++;
};

/** DynamoDB capacity units the emulator reported (ReturnConsumedCapacity TOTAL, asked for by the counter). */
export interface CapacityUnits {
  read: number;
  write: number;
}

/** Operations DynamoDB bills as reads; every other data-plane call is a write. */
const DYNAMODB_READS = new Set(["Get", "GetItem", "BatchGet", "BatchGetItem", "Query", "Scan", "TransactGet", "TransactGetItems"]);

export interface CounterReport {
  /** DynamoDB read and write capacity units of the counted requests, as the emulator computed them. */
  capacity: CapacityUnits;
  /** Wall time of the counted handler invocations, ms (a Lambda's billed duration, locally). */
  handlerMs: Summary & { total: number };
  /** Requests by handlers that are part of the workload. */
  counted: Counts & { total: number };
  /** Requests left out: the benchmark's own API calls and anything outside handlers. */
  excluded: Counts & { total: number };
  /** Counted requests per source (handler, or handler: agent message type), most first. */
  bySource: Array<{ source: string } & Counts & { total: number }>;
  /** Counted requests per operation and table or queue, most first. */
  byOperation: Array<{ client: ClientKind; operation: string; target: string; count: number }>;
  /** The same per source (handler, or handler: agent message type), to see which message makes which request. */
  bySourceOperation: Array<{ source: string; client: ClientKind; operation: string; target: string; count: number }>;
  /** Handler invocations per source (the same window), to read requests per message. */
  invocations: Record<string, number>;
  /** Counted requests that failed, by operation, target and error (e.g. ConditionalCheckFailedException), most first. */
  errors: Array<{ client: ClientKind; operation: string; target: string; error: string; count: number }>;
  /** Per source, how the requests and refusals of one invocation are spread (a long tail is a retry loop). */
  perInvocation: Array<{ source: string; invocations: number; requests: Summary; refused: Summary; totalMs: number }>;
}

interface Invocation {
  source: string;
  requests: number;
  refused: number;
  ms: number;
  /** Numbered in order of start, for the trace. */
  id: number;
}

/** One request as NIMBUS_BENCH_TRACE writes it: when it started and ended (ms since the counter was made), and who made it. */
export interface TracedRequest {
  invocation: number;
  source: string;
  key: string;
  start: number;
  end: number;
  error?: string;
}

export class RequestCounter {
  private readonly scope = new AsyncLocalStorage<Invocation>();
  private bySource = new Map<string, Counts>();
  private bySourceOperation = new Map<string, number>();
  private invocations = new Map<string, number>();
  private errors = new Map<string, number>();
  private perInvocation = new Map<string, Invocation[]>();
  private capacityBySource = new Map<string, CapacityUnits>();
  private invocationCount = 0;
  /** Every request, when a trace was asked for (`traceRequests`): to see what one invocation waited on, and behind whom. */
  private traced: TracedRequest[] | undefined;
  private readonly origin = performance.now();

  constructor(
    /** Sources whose requests are not the workload's (e.g. the JSON API the benchmark polls). */
    private readonly isExcluded: (source: string) => boolean,
    /** Table and queue names are shown without this prefix. */
    private readonly namePrefix = "",
  ) {}

  /** Adds the counting middleware to a client, once (the name is unique: a second add throws). */
  attach(kind: ClientKind, client: CountableClient): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const invocation = this.scope.getStore();
        const source = invocation?.source ?? OUTSIDE_HANDLERS;
        if (invocation) invocation.requests++;
        bump(this.bySource, source, kind);
        const key = `${kind}\t${String(context?.commandName ?? "?").replace(/Command$/, "")}\t${this.targetOf(args?.input)}`;
        this.bySourceOperation.set(`${source}\t${key}`, (this.bySourceOperation.get(`${source}\t${key}`) ?? 0) + 1);
        // Ask DynamoDB what each request cost in capacity units: the bill is in units, not requests.
        const asksCapacity = kind === "dynamodb" && args?.input && typeof args.input === "object" && args.input.ReturnConsumedCapacity === undefined;
        const sent = asksCapacity ? { ...args, input: { ...args.input, ReturnConsumedCapacity: "TOTAL" } } : args;
        const trace: TracedRequest | undefined = this.traced && { invocation: invocation?.id ?? -1, source, key, start: performance.now() - this.origin, end: 0 };
        if (trace) this.traced!.push(trace);
        try {
          const result = await next(sent);
          if (trace) trace.end = performance.now() - this.origin;
          if (kind === "dynamodb") this.addCapacity(source, String(context?.commandName ?? ""), result?.output?.ConsumedCapacity);
          return result;
        } catch (error) {
          // Expected refusals (a conditional write that lost, a gone connection) are work too.
          const name = error instanceof Error ? error.name : "Error";
          if (trace) Object.assign(trace, { end: performance.now() - this.origin, error: name });
          if (invocation) invocation.refused++;
          if (!this.isExcluded(source)) this.errors.set(`${key}\t${name}`, (this.errors.get(`${key}\t${name}`) ?? 0) + 1);
          throw error;
        }
      },
      { step: "initialize", name: MIDDLEWARE_NAME },
    );
  }

  /** Wraps handler resolution so every invocation runs in a scope naming its source. */
  wrapResolver(resolve: HandlerResolver): HandlerResolver {
    return async (spec) => {
      const handler = await resolve(spec);
      const name = spec.replace(/^functions\//, "").replace(/\.handler$/, "");
      return async (event, context) => {
        const source = name === "socket/default" ? `${name}: ${messageType(event)}` : name;
        this.invocations.set(source, (this.invocations.get(source) ?? 0) + 1);
        const invocation: Invocation = { source, requests: 0, refused: 0, ms: 0, id: this.invocationCount++ };
        const start = performance.now();
        try {
          return await this.scope.run(invocation, () => handler(event, context));
        } finally {
          invocation.ms = performance.now() - start;
          const list = this.perInvocation.get(source) ?? [];
          list.push(invocation);
          this.perInvocation.set(source, list);
        }
      };
    };
  }

  /** Keeps every request from now on, for `tracedRequests` (NIMBUS_BENCH_TRACE). */
  traceRequests(): void {
    this.traced ??= [];
  }

  /** The requests kept since `traceRequests`, in order of start. */
  tracedRequests(): readonly TracedRequest[] {
    return this.traced ?? [];
  }

  /** Forgets everything counted so far (e.g. the agents' connections before the job). */
  reset(): void {
    this.bySource = new Map();
    this.bySourceOperation = new Map();
    this.invocations = new Map();
    this.errors = new Map();
    this.perInvocation = new Map();
    this.capacityBySource = new Map();
  }

  /** Handler invocations of one source so far (e.g. to wait until a frame sent has been handled). */
  invocationsOf(source: string): number {
    return this.invocations.get(source) ?? 0;
  }

  /** The requests each finished invocation of `source` made, in order. */
  requestsPerInvocationOf(source: string): number[] {
    return (this.perInvocation.get(source) ?? []).map((i) => i.requests);
  }

  /** DynamoDB capacity units of one source's requests so far. */
  capacityOf(source: string): CapacityUnits {
    return { read: 0, write: 0, ...this.capacityBySource.get(source) };
  }

  private addCapacity(source: string, commandName: string, consumed: unknown): void {
    const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
    const units = list.reduce((sum: number, c: { CapacityUnits?: number }) => sum + (typeof c?.CapacityUnits === "number" ? c.CapacityUnits : 0), 0);
    const entry = this.capacityBySource.get(source) ?? { read: 0, write: 0 };
    if (DYNAMODB_READS.has(commandName.replace(/Command$/, ""))) entry.read += units;
    else entry.write += units;
    this.capacityBySource.set(source, entry);
  }

  /** All requests so far from one source (e.g. OUTSIDE_HANDLERS, to check the middleware counts once). */
  countsOf(source: string): Counts {
    return { ...zero(), ...this.bySource.get(source) };
  }

  report(): CounterReport {
    const counted = zero();
    const excluded = zero();
    const bySource: CounterReport["bySource"] = [];
    for (const [source, counts] of this.bySource) {
      const into = this.isExcluded(source) ? excluded : counted;
      for (const kind of CLIENT_KINDS) into[kind] += counts[kind];
      if (!this.isExcluded(source)) bySource.push({ source, ...counts, total: sum(counts) });
    }
    bySource.sort((a, b) => b.total - a.total);
    // The workload's alone, as `counted`: the bench's own polls of the JSON API are left out.
    const operations = new Map<string, number>();
    for (const [key, count] of this.bySourceOperation) {
      const [source, ...operation] = key.split("\t");
      if (!this.isExcluded(source!)) operations.set(operation.join("\t"), (operations.get(operation.join("\t")) ?? 0) + count);
    }
    const byOperation = [...operations.entries()]
      .map(([key, count]) => {
        const [client, operation, target] = key.split("\t") as [ClientKind, string, string];
        return { client, operation, target, count };
      })
      .sort((a, b) => b.count - a.count);
    const capacity = { read: 0, write: 0 };
    for (const [source, units] of this.capacityBySource) {
      if (this.isExcluded(source)) continue;
      capacity.read += units.read;
      capacity.write += units.write;
    }
    const durations = [...this.perInvocation.entries()].filter(([source]) => !this.isExcluded(source)).flatMap(([, list]) => list.map((i) => i.ms));
    return {
      capacity,
      handlerMs: { ...summarize(durations, 2), total: Math.round(durations.reduce((a, b) => a + b, 0)) },
      counted: { ...counted, total: sum(counted) },
      excluded: { ...excluded, total: sum(excluded) },
      bySource,
      byOperation,
      bySourceOperation: [...this.bySourceOperation.entries()]
        .map(([key, count]) => {
          const [source, client, operation, target] = key.split("\t") as [string, ClientKind, string, string];
          return { source, client, operation, target, count };
        })
        .filter((row) => !this.isExcluded(row.source))
        .sort((a, b) => a.source.localeCompare(b.source) || b.count - a.count),
      invocations: Object.fromEntries([...this.invocations.entries()].sort((a, b) => b[1] - a[1])),
      perInvocation: [...this.perInvocation.entries()]
        .filter(([source]) => !this.isExcluded(source))
        .map(([source, list]) => ({
          source,
          invocations: list.length,
          requests: summarize(list.map((i) => i.requests), 1),
          refused: summarize(list.map((i) => i.refused), 1),
          totalMs: Math.round(list.reduce((sum, i) => sum + i.ms, 0)),
        })),
      errors: [...this.errors.entries()]
        .map(([key, count]) => {
          const [client, operation, target, error] = key.split("\t") as [ClientKind, string, string, string];
          return { client, operation, target, error, count };
        })
        .sort((a, b) => b.count - a.count),
    };
  }

  private targetOf(input: any): string {
    const strip = (name: string) => (name.startsWith(this.namePrefix) ? name.slice(this.namePrefix.length) : name);
    if (typeof input?.TableName === "string") return strip(input.TableName) + (input.IndexName ? `/${input.IndexName}` : "");
    if (input?.RequestItems && typeof input.RequestItems === "object") return Object.keys(input.RequestItems).map(strip).join(",");
    if (typeof input?.QueueUrl === "string") return strip(input.QueueUrl.split("/").pop() ?? input.QueueUrl);
    if (typeof input?.QueueName === "string") return strip(input.QueueName);
    return "-";
  }
}

const sum = (counts: Counts) => counts.dynamodb + counts.sqs + counts.gateway;

/** The `type` of an agent frame, read cheaply from the start of its JSON. */
function messageType(event: any): string {
  const body: unknown = event?.isBase64Encoded && typeof event.body === "string" ? Buffer.from(event.body, "base64").toString("utf8") : event?.body;
  if (typeof body !== "string") return "(no body)";
  const match = /"type"\s*:\s*"([^"]{1,40})"/.exec(body.slice(0, 200));
  return match?.[1] ?? "(unknown)";
}
