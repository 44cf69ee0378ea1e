/**
 * Every resource Nimbus uses, declared once. `sst.config.ts` turns these into AWS resources;
 * the local runtime (`nimbus dev`) creates the same tables in dynalite, serves the same routes
 * and sets `SST_RESOURCE_<Name>` so handlers find them through `Resource` either way.
 * This module is plain data: sst.config.ts imports it, so it must not import the AWS SDK.
 */

export type AttributeType = "string" | "number" | "binary";

export interface TableSpec {
  fields: Record<string, AttributeType>;
  primaryIndex: { hashKey: string; rangeKey?: string };
  globalIndexes?: Record<string, { hashKey: string; rangeKey?: string }>;
  /** Attribute holding an epoch-seconds expiry. Cleanup only: correctness never relies on it. */
  ttl?: string;
}

export const tables = {
  /** Cluster join tokens, stored hashed: `tokenId` → { secretHash, name, createdAt, revokedAt? }. */
  Tokens: {
    fields: { tokenId: "string" },
    primaryIndex: { hashKey: "tokenId" },
  },
  /** Open agent connections: `connectionId` → token, session, agent info, connectedAt, lastSeen. */
  Connections: {
    fields: { connectionId: "string", shard: "string", lastSeen: "string" },
    primaryIndex: { hashKey: "connectionId" },
    // The sweeper reads the quiet ones from here, never the whole table.
    globalIndexes: { byLastSeen: { hashKey: "shard", rangeKey: "lastSeen" } },
  },
  /** Agent sessions, which outlive connections: the tasks (leases) an agent holds and its slots. */
  Sessions: {
    fields: { sessionId: "string", shard: "string", lastSeen: "string" },
    primaryIndex: { hashKey: "sessionId" },
    globalIndexes: { byLastSeen: { hashKey: "shard", rangeKey: "lastSeen" } },
  },
  /** One per push or pull request: repository, commit, status, evaluation. Listed newest first. */
  Jobs: {
    fields: { jobId: "string", listKey: "string", createdAt: "string", activeShard: "string", updatedAt: "string" },
    primaryIndex: { hashKey: "jobId" },
    globalIndexes: {
      byCreated: { hashKey: "listKey", rangeKey: "createdAt" },
      // Sparse: only running jobs, so the sweeper can finish any that nothing else will.
      byActivity: { hashKey: "activeShard", rangeKey: "updatedAt" },
    },
  },
  /** `X-GitHub-Delivery` → job, so a redelivered webhook never makes a second job. */
  Deliveries: {
    fields: { deliveryId: "string" },
    primaryIndex: { hashKey: "deliveryId" },
  },
  /** Every derivation Nimbus knows, shared by all jobs: status, lease, inputs still pending. */
  Derivations: {
    fields: {
      drvPath: "string",
      queuedShard: "string",
      queuedAt: "string",
      dueShard: "string",
      dueAt: "string",
      propagateShard: "string",
      updatedAt: "string",
    },
    primaryIndex: { hashKey: "drvPath" },
    globalIndexes: {
      // Sparse: settled derivations whose dependents and jobs were not yet told (a Lambda may die in between).
      byUnpropagated: { hashKey: "propagateShard", rangeKey: "updatedAt" },
      // Sparse: only queued derivations, so the sweeper can re-send those that sat too long.
      byQueuedAt: { hashKey: "queuedShard", rangeKey: "queuedAt" },
      // Sparse: only retries waiting out their back-off.
      byDueAt: { hashKey: "dueShard", rangeKey: "dueAt" },
    },
  },
  /** input → dependent, to find what may become ready (or dependency-failed) when an input settles. */
  Edges: {
    fields: { inputDrv: "string", dependentDrv: "string" },
    primaryIndex: { hashKey: "inputDrv", rangeKey: "dependentDrv" },
  },
  /** Which derivations a job needs, with their status mirrored for paging by status. */
  JobDerivations: {
    fields: { jobId: "string", drvPath: "string", jobStatus: "string" },
    primaryIndex: { hashKey: "jobId", rangeKey: "drvPath" },
    globalIndexes: {
      byJobStatus: { hashKey: "jobStatus", rangeKey: "drvPath" },
      byDrv: { hashKey: "drvPath", rangeKey: "jobId" },
    },
  },
  /** A job's attributes (path → derivation or evaluation error). */
  JobAttributes: {
    fields: { jobId: "string", attribute: "string" },
    primaryIndex: { hashKey: "jobId", rangeKey: "attribute" },
  },
  /** Build logs in numbered chunks per derivation. */
  BuildLogs: {
    fields: { drvPath: "string", chunk: "number" },
    primaryIndex: { hashKey: "drvPath", rangeKey: "chunk" },
  },
  /** Where each sweeper step that walks an index stopped, so the next sweep goes on from there (docs/reliability.md). */
  SweeperCursors: {
    fields: { step: "string" },
    primaryIndex: { hashKey: "step" },
  },
  /** The build queues created so far, one per (system, sorted required features). */
  BuildQueues: {
    fields: { queueKey: "string" },
    primaryIndex: { hashKey: "queueKey" },
  },
} as const satisfies Record<string, TableSpec>;
export type TableName = keyof typeof tables;
/** The global secondary indexes a table declares: the only index names a query may use. */
export type IndexName<T extends TableName> = (typeof tables)[T] extends { globalIndexes: infer G } ? keyof G & string : never;

/**
 * `sst.Secret`s in AWS; generated into `<data dir>/secrets.json` locally.
 * ApiAdminToken: bearer token for the JSON API. GithubWebhookSecret: HMAC key for webhooks.
 */
export interface QueueSpec {
  fifo: true;
  visibilityTimeoutSeconds: number;
}

/**
 * Static queues (`Resource.<Name>.url`). Build queues are not here: they are created on first
 * use, one per (system, features), named by `buildQueueName`.
 */
export const queues = {
  /** Evaluations waiting for an agent with a free slot. */
  Evaluations: { fifo: true, visibilityTimeoutSeconds: 60 },
} as const satisfies Record<string, QueueSpec>;
export type QueueName = keyof typeof queues;

/** Every build queue's name starts with this, so IAM can grant exactly those. */
export const buildQueuePrefix = (app: string, stage: string) => `${app}-${stage}-build-`;

export const secrets = ["ApiAdminToken", "GithubWebhookSecret"] as const;
export type SecretName = (typeof secrets)[number];

/** The agents' WebSocket API; handlers get `Resource.AgentSocket.{url,managementEndpoint}` (and no secret: agents present join tokens, checked against the Tokens table). */
export const agentSocket = {
  name: "AgentSocket",
  routes: {
    $connect: "functions/socket/connect.handler",
    $disconnect: "functions/socket/disconnect.handler",
    $default: "functions/socket/default.handler",
  },
} as const;

export interface HttpRoute {
  /** API Gateway HTTP API route key, e.g. `GET /api/jobs/{id}`. */
  route: string;
  /** `file.export` relative to the repository root, as SST takes it. */
  handler: string;
  /** The secrets its handler reads, and the only ones sst.config.ts links to it. */
  secrets: readonly SecretName[];
}

/** The JSON API's routes check the bearer token against ApiAdminToken. */
const admin = ["ApiAdminToken"] as const;

/** The HTTP API (`Resource.HttpApi.url`): JSON API and webhooks. */
export const httpApi = {
  name: "HttpApi",
  routes: [
    { route: "GET /api/service-info", handler: "functions/api/service-info.handler", secrets: [] },
    { route: "GET /api/agents", handler: "functions/api/agents.handler", secrets: admin },
    { route: "GET /api/tokens", handler: "functions/api/tokens-list.handler", secrets: admin },
    { route: "POST /api/tokens", handler: "functions/api/tokens-create.handler", secrets: admin },
    { route: "DELETE /api/tokens/{id}", handler: "functions/api/tokens-revoke.handler", secrets: admin },
    { route: "POST /webhooks/github", handler: "functions/webhooks/github.handler", secrets: ["GithubWebhookSecret"] },
    { route: "GET /api/jobs", handler: "functions/api/jobs-list.handler", secrets: admin },
    { route: "GET /api/jobs/{id}", handler: "functions/api/jobs-get.handler", secrets: admin },
    { route: "GET /api/jobs/{id}/derivations", handler: "functions/api/job-derivations.handler", secrets: admin },
    { route: "POST /api/jobs/{id}/cancel", handler: "functions/api/jobs-cancel.handler", secrets: admin },
    { route: "POST /api/jobs/{id}/rerun", handler: "functions/api/jobs-rerun.handler", secrets: admin },
    { route: "GET /api/derivations/{drv}/log", handler: "functions/api/derivation-log.handler", secrets: admin },
  ] satisfies HttpRoute[],
} as const;

/** Scheduled handlers: EventBridge Scheduler in AWS, a timer locally. They read no secret. */
export const schedules = {
  Sweeper: { handler: "functions/sweeper.handler", rate: "rate(1 minute)", intervalMs: 60_000 },
} as const;

/** Local resource names; in AWS, SST names everything itself. */
export function localResourceName(app: string, stage: string, name: string): string {
  return `${app}-${stage}-${name}`;
}
