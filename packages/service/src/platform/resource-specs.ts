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
    fields: {
      jobId: "string",
      listKey: "string",
      createdAt: "string",
      activeShard: "string",
      updatedAt: "string",
      heldKey: "string",
      pullRequestKey: "string",
    },
    primaryIndex: { hashKey: "jobId" },
    globalIndexes: {
      byCreated: { hashKey: "listKey", rangeKey: "createdAt" },
      // Sparse: only running jobs, so the sweeper can finish any that nothing else will.
      byActivity: { hashKey: "activeShard", rangeKey: "updatedAt" },
      // Sparse: only forks' jobs waiting for approval, by repository and commit (what an approval names).
      byHeldCommit: { hashKey: "heldKey", rangeKey: "jobId" },
      // Sparse: only pull requests' jobs, by repository and number (what closing one cancels).
      byPullRequest: { hashKey: "pullRequestKey", rangeKey: "createdAt" },
    },
  },
  /**
   * What GitHub was last told of each job (docs/github.md): the reporter's state, when to try
   * again, and a short lease so that one invocation at a time sends. No token, no report body.
   */
  Reports: {
    fields: { jobId: "string", dueShard: "string", dueAt: "string" },
    primaryIndex: { hashKey: "jobId" },
    // Sparse: only reports waiting out a throttle, a rate limit or a back-off; the sweeper sends them.
    globalIndexes: { byDue: { hashKey: "dueShard", rangeKey: "dueAt" } },
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

export const secrets = ["ApiAdminToken", "GithubWebhookSecret", "GithubAppId", "GithubAppPrivateKey", "GithubToken"] as const;
export type SecretName = (typeof secrets)[number];

/**
 * What talks to GitHub reads: the App's id and key or a personal token, and the webhook secret
 * (packages/github checks them as one setting; docs/github.md). Unset ones hold `none`.
 */
export const githubSecrets = ["GithubWebhookSecret", "GithubAppId", "GithubAppPrivateKey", "GithubToken"] as const satisfies readonly SecretName[];

/**
 * The handlers that talk to GitHub: they take its webhooks, report jobs that change (the agents'
 * frames settle them, the sweeper retries reports, cancel and rerun change them) or hand out
 * evaluations of private repositories (with a clone token minted then).
 */
export const githubHandlers: readonly string[] = [
  "functions/webhooks/github.handler",
  "functions/socket/default.handler",
  "functions/sweeper.handler",
  "functions/api/jobs-cancel.handler",
  "functions/api/jobs-rerun.handler",
];

/** The handlers that answer without the admin token (signed webhooks, the agents' discovery). */
const publicHandlers: readonly string[] = ["functions/webhooks/github.handler", "functions/api/service-info.handler"];

/** The secrets one handler is linked to in AWS: only those it reads (docs/security.md). */
export function handlerSecrets(handler: string): SecretName[] {
  const admin: SecretName[] = handler.startsWith("functions/api/") && !publicHandlers.includes(handler) ? ["ApiAdminToken"] : [];
  return [...admin, ...(githubHandlers.includes(handler) ? githubSecrets : [])];
}

/** The agents' WebSocket API; handlers get `Resource.AgentSocket.{url,managementEndpoint}`. */
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
}

/** The HTTP API (`Resource.HttpApi.url`): JSON API and webhooks. */
export const httpApi = {
  name: "HttpApi",
  routes: [
    { route: "GET /api/service-info", handler: "functions/api/service-info.handler" },
    { route: "GET /api/agents", handler: "functions/api/agents.handler" },
    { route: "GET /api/tokens", handler: "functions/api/tokens-list.handler" },
    { route: "POST /api/tokens", handler: "functions/api/tokens-create.handler" },
    { route: "DELETE /api/tokens/{id}", handler: "functions/api/tokens-revoke.handler" },
    { route: "POST /webhooks/github", handler: "functions/webhooks/github.handler" },
    { route: "GET /api/jobs", handler: "functions/api/jobs-list.handler" },
    { route: "GET /api/jobs/{id}", handler: "functions/api/jobs-get.handler" },
    { route: "GET /api/jobs/{id}/derivations", handler: "functions/api/job-derivations.handler" },
    { route: "POST /api/jobs/{id}/cancel", handler: "functions/api/jobs-cancel.handler" },
    { route: "POST /api/jobs/{id}/rerun", handler: "functions/api/jobs-rerun.handler" },
    { route: "GET /api/derivations/{drv}/log", handler: "functions/api/derivation-log.handler" },
  ] satisfies HttpRoute[],
} as const;

/** Scheduled handlers: EventBridge Scheduler in AWS, a timer locally. */
export const schedules = {
  Sweeper: { handler: "functions/sweeper.handler", rate: "rate(1 minute)", intervalMs: 60_000 },
} as const;

/** Local resource names; in AWS, SST names everything itself. */
export function localResourceName(app: string, stage: string, name: string): string {
  return `${app}-${stage}-${name}`;
}
