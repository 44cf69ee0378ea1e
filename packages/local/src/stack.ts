/**
 * The whole local stack in one process: dynalite, fauxqs, secrets, the environment handlers
 * read, the HTTP + WebSocket port and the scheduler, running the very same Lambda handlers.
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import { dashboardSite } from "@nimbus/dashboard";
import {
  agentSocket,
  httpApi,
  queues,
  schedules,
  secrets as secretNames,
  tables,
  type QueueSpec,
  type SecretName,
} from "@nimbus/service/resource-specs";
import { ensureTables, startDynamo, type DynamoServer } from "./dynamodb.ts";
import { FaultInjector, type FaultCounts, type FaultPlan } from "./faults.ts";
import { applyEnvironment, localBucketName, localEnvironment, localTableName } from "./environment.ts";
import { ensureBucket, startS3, type S3Server } from "./s3.ts";
import { HandlerInvoker, importHandlerFrom, type HandlerResolver } from "./handlers.ts";
import { HttpRouter } from "./http-events.ts";
import { startHttpServer, type HttpServer } from "./http-server.ts";
import { createManagementApi } from "./management-api.ts";
import { startQueueConsumers, type QueueConsumer } from "./queue-consumers.ts";
import { startScheduler, type Schedule, type Scheduler } from "./scheduler.ts";
import { loadOrCreateSecrets, secretsPath } from "./secrets.ts";
import { SocketGateway } from "./socket-gateway.ts";
import { ensureQueues, startSqs, type SqsServer } from "./sqs.ts";

export const AGENT_SOCKET_PATH = "/agent";
export const MANAGEMENT_API_PATH = "/_gateway";
export const DEFAULT_PORT = 4800;

export interface LocalStackOptions {
  /** Default `Number(process.env.NIMBUS_PORT) || 4800`; 0 picks a free port. */
  port?: number;
  /** Interface the HTTP/WebSocket port listens on (default 127.0.0.1). */
  host?: string;
  /** Holds `dynamodb/` (LevelDB) and `secrets.json`. */
  dataDir: string;
  connectionLifetimeMs?: number;
  idleTimeoutMs?: number;
  /** Sweeper period (default from resource-specs.ts); 0 disables the sweeper. */
  sweepIntervalMs?: number;
  /** How handler specs become functions; default imports `<repo root>/<path>.ts`. */
  resolveHandler?: HandlerResolver;
  /**
   * More variables for the handlers, as `environment` in sst.config.ts gives them in AWS —
   * e.g. the timing knobs of docs/reliability.md (`NIMBUS_SESSION_GRACE_MS`, …).
   */
  environment?: Record<string, string>;
  /** One line per event worth telling; default stderr. */
  log?: (line: string) => void;
  /**
   * Faults to inject, for chaos runs only (packages/local/src/faults.ts): handler invocations
   * that die at an AWS request, frames and queue messages delivered twice. Default: none.
   */
  faults?: FaultPlan;
}

export interface LocalGatewayControl {
  /** Open connection ids. */
  connectionIds(): string[];
  /** Cuts the TCP connection without `$disconnect` (AWS's `$disconnect` is best-effort). */
  dropConnection(connectionId: string): void;
  /** Closes with a close frame (default 1000); `$disconnect` follows. */
  closeConnection(connectionId: string, code?: number): void;
}

export interface LocalStack {
  /** HTTP API base URL, e.g. `http://127.0.0.1:4800`. */
  url: string;
  /** e.g. `ws://127.0.0.1:4800/agent`. */
  agentSocketUrl: string;
  /** `@connections` endpoint, e.g. `http://127.0.0.1:4800/_gateway/<secret>`: the path holds this process's secret. */
  managementEndpoint: string;
  port: number;
  /** Absolute. */
  dataDir: string;
  adminToken: string;
  secrets: Readonly<Record<SecretName, string>>;
  secretsPath: string;
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  /** The S3 emulator holding the built-in cache's bucket. */
  s3Endpoint: string;
  gateway: LocalGatewayControl;
  /** How many faults of each kind were injected so far (all 0 without a fault plan). */
  faultCounts(): FaultCounts;
  /**
   * Waits, at most `timeoutMs`, until no handler invocation runs (a frame's answer reaches the
   * agent before its follow-up ends; tests wait for that); true when none is left.
   */
  handlersIdle(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

export class LocalStackError extends Error {
  override name = "LocalStackError";
}

/**
 * One stack per process: SST's `Resource` reads `SST_RESOURCE_*` once and handlers cache SDK
 * clients, so a restart must come back on the same addresses. These remember them.
 */
let state: "idle" | "starting" | "running" | "stopping" = "idle";
const remembered: { host?: string; httpPort?: number; dynamodbPort?: number; sqsPort?: number; s3Port?: number; gatewaySecret?: string } = {};

/** Sockets get this long to finish their close handshake on stop before being cut. */
const STOP_GRACE_MS = 1_000;
/** Handlers still running at stop (e.g. `$disconnect`) get this long before the services go. */
const STOP_DRAIN_MS = 2_000;
/** dynalite and fauxqs are reached only from this process. */
const BACKEND_HOST = "127.0.0.1";

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** How a listening address is written in a URL. */
function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

function choosePort(host: string, requested: number): number {
  if (remembered.httpPort === undefined) return requested;
  if (remembered.host !== host) {
    throw new LocalStackError(
      `this process already ran the local stack on ${remembered.host}; handlers keep that address, so it cannot move to ${host} (start a new process)`,
    );
  }
  if (requested !== 0 && requested !== remembered.httpPort) {
    throw new LocalStackError(
      `this process already ran the local stack on port ${remembered.httpPort}; handlers keep that address, so it cannot move to port ${requested} (start a new process)`,
    );
  }
  return remembered.httpPort;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  if (state !== "idle") {
    throw new LocalStackError(
      `a local stack is already ${state === "stopping" ? "stopping" : "running"} in this process; ` +
        "await its stop() first (one stack per process: handlers read the environment once)",
    );
  }
  state = "starting";
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? defaultLog;
  const started: Array<() => Promise<void>> = [];
  try {
    const port = choosePort(host, options.port ?? (Number(process.env.NIMBUS_PORT) || DEFAULT_PORT));
    const dataDir = resolvePath(options.dataDir);
    await mkdir(dataDir, { recursive: true });
    const secrets = (await loadOrCreateSecrets(dataDir, secretNames)) as Record<SecretName, string>;

    const dynamo: DynamoServer = await startDynamo({ dataDir, host: BACKEND_HOST, port: remembered.dynamodbPort ?? 0, onFailure: log });
    started.push(() => dynamo.stop());
    remembered.dynamodbPort = dynamo.port;
    await ensureTables(dynamo.endpoint, tables, localTableName);

    const faults = options.faults ? new FaultInjector(options.faults) : undefined;
    if (faults) started.push(async () => faults.close());
    const sqs: SqsServer = await startSqs({ host: BACKEND_HOST, port: remembered.sqsPort ?? 0, faults });
    started.push(() => sqs.stop());
    remembered.sqsPort = sqs.port;
    const queueUrls = await ensureQueues(sqs.endpoint, queues, localTableName);
    // The queues SQS delivers to a handler (an event source mapping in AWS).
    const consumers: QueueConsumer[] = Object.entries<QueueSpec>(queues).flatMap(([name, spec]) =>
      spec.consumer ? [{ name, url: queueUrls[name]!, handler: spec.consumer.handler, batchSize: spec.consumer.batchSize }] : [],
    );

    // The built-in cache's bucket, its objects as files under the data directory.
    const s3: S3Server = await startS3({ host: BACKEND_HOST, port: remembered.s3Port ?? 0, storageDir: join(dataDir, "s3") });
    started.push(() => s3.stop());
    remembered.s3Port = s3.port;
    await ensureBucket(s3.endpoint, localBucketName());

    const invoker = new HandlerInvoker(options.resolveHandler ?? importHandlerFrom(), faults);
    // Kept across restarts in this process: handlers keep the endpoint in their SDK client.
    const gatewaySecret = (remembered.gatewaySecret ??= randomBytes(24).toString("base64url"));
    const sweepIntervalMs = options.sweepIntervalMs ?? schedules.Sweeper.intervalMs;
    const invoke = (spec: string, event: unknown) => invoker.invoke(spec, event);
    const gateway = new SocketGateway({
      routes: agentSocket.routes,
      invoke,
      log,
      connectionLifetimeMs: options.connectionLifetimeMs,
      idleTimeoutMs: options.idleTimeoutMs,
      faults,
    });
    const http: HttpServer = await startHttpServer({
      host,
      port,
      router: new HttpRouter(httpApi.routes),
      invoke,
      socketPath: AGENT_SOCKET_PATH,
      gateway,
      // The management API shares the public port, so its path holds a secret only this process
      // knows: nobody who can reach the port can post to agents or close their connections.
      managementApi: createManagementApi(gateway, MANAGEMENT_API_PATH, gatewaySecret, log),
      site: await dashboardSite(log),
      log,
    });
    // No await between listening and here: the environment is in place before any request is handled.
    const base = `${urlHost(host)}:${http.port}`;
    remembered.host = host;
    remembered.httpPort = http.port;
    const endpoints = {
      dynamodbEndpoint: dynamo.endpoint,
      sqsEndpoint: sqs.endpoint,
      s3Endpoint: s3.endpoint,
      httpUrl: `http://${base}`,
      socketUrl: `ws://${base}${AGENT_SOCKET_PATH}`,
      managementEndpoint: `http://${base}${MANAGEMENT_API_PATH}/${gatewaySecret}`,
    };
    applyEnvironment({ ...localEnvironment(endpoints, secrets, queueUrls), ...options.environment });
    started.push(async () => {
      await gateway.closeAll(1001, "Going away", STOP_GRACE_MS);
      await invoker.drain(STOP_DRAIN_MS);
      await http.stop();
    });
    // After the environment: handlers may read it as they load.
    await invoker.preload(
      [
        ...Object.values(agentSocket.routes),
        ...httpApi.routes.map((route) => route.handler),
        ...(sweepIntervalMs > 0 ? [schedules.Sweeper.handler] : []),
        ...consumers.map((consumer) => consumer.handler),
      ],
      log,
    );

    const jobs: Schedule[] = [];
    if (sweepIntervalMs > 0) jobs.push({ name: "Sweeper", handler: schedules.Sweeper.handler, intervalMs: sweepIntervalMs });
    const scheduler: Scheduler = startScheduler({ schedules: jobs, invoke, log });
    started.push(async () => scheduler.stop());
    const polling = startQueueConsumers({ consumers, endpoint: sqs.endpoint, invoke, log });
    started.push(() => polling.stop());

    let stopping: Promise<void> | undefined;
    const stack: LocalStack = {
      url: endpoints.httpUrl,
      agentSocketUrl: endpoints.socketUrl,
      managementEndpoint: endpoints.managementEndpoint,
      port: http.port,
      dataDir,
      adminToken: secrets.ApiAdminToken,
      secrets,
      secretsPath: secretsPath(dataDir),
      dynamodbEndpoint: dynamo.endpoint,
      sqsEndpoint: sqs.endpoint,
      s3Endpoint: s3.endpoint,
      gateway: {
        connectionIds: () => gateway.connectionIds(),
        dropConnection: (id) => gateway.drop(id),
        closeConnection: (id, code) => gateway.close(id, code),
      },
      handlersIdle: (timeoutMs) => invoker.drain(timeoutMs),
      faultCounts: () => ({ ...(faults?.counts ?? { handlerDeaths: 0, requestsRefused: 0, duplicateFrames: 0, duplicateMessages: 0 }) }),
      stop: () => (stopping ??= stopAll(started, log)),
    };
    state = "running";
    return stack;
  } catch (error) {
    await stopAll(started, log).catch(() => {});
    throw error;
  }
}

/** Stops what started, newest first, every step even when one fails; leaves the process free to start again. */
async function stopAll(started: Array<() => Promise<void>>, log: (line: string) => void): Promise<void> {
  state = "stopping";
  const failures: unknown[] = [];
  for (const stop of [...started].reverse()) {
    try {
      await stop();
    } catch (error) {
      failures.push(error);
      log(`local stack: stop step failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  state = "idle";
  if (failures.length > 0) {
    throw new LocalStackError(`stopping the local stack failed in ${failures.length} step(s)`, { cause: failures[0] });
  }
}
