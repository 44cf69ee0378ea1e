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
  /**
   * `keys-only`: the index holds the table's and its own keys, nothing else, so an update that
   * changes no key writes only the table (readers get the items by key). Otherwise all fields.
   */
  globalIndexes?: Record<string, { hashKey: string; rangeKey?: string; projection?: "keys-only" }>;
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
    fields: { sessionId: "string", shard: "string", lastSeen: "string", capKey: "string", idleSlots: "number" },
    primaryIndex: { hashKey: "sessionId" },
    globalIndexes: {
      // Keys only: a session's slot changes (about one per build) then write no entry here, only its lastSeen does.
      byLastSeenKeys: { hashKey: "shard", rangeKey: "lastSeen", projection: "keys-only" },
      // Sparse: sessions not draining, by capability class and shard (core capability-class.ts),
      // most free slots first: waking reads the free ones (idleSlots > 0), placing a build the
      // class's others too — never every session.
      byCapability: { hashKey: "capKey", rangeKey: "idleSlots" },
      // The same sessions by class and id, keys only: whether a class has a session. A change of free slots moves a
      // session's byCapability entry, and a read while it moves can miss it; this entry moves only when capKey does.
      byClass: { hashKey: "capKey", rangeKey: "sessionId", projection: "keys-only" },
    },
  },
  /** The capability classes agents have said hello with (one item per class): which index partitions serve a queue. */
  AgentClasses: {
    fields: { classId: "string" },
    primaryIndex: { hashKey: "classId" },
  },
  /** One per push or pull request: repository, commit, status, evaluation. Listed newest first. */
  Jobs: {
    fields: {
      jobId: "string",
      listKey: "string",
      createdAt: "string",
      activeShard: "string",
      updatedAt: "string",
      repository: "string",
      repositoryRef: "string",
      heldKey: "string",
      pullRequestKey: "string",
    },
    primaryIndex: { hashKey: "jobId" },
    globalIndexes: {
      // The lists keep keys only: a running job's item changes with every count it keeps (every
      // build), and an index holding all of it would be rewritten each time — in one partition here.
      byCreated: { hashKey: "listKey", rangeKey: "createdAt", projection: "keys-only" },
      // Sparse: only running jobs, so the sweeper can finish any that nothing else will.
      byActivity: { hashKey: "activeShard", rangeKey: "updatedAt" },
      // The jobs of one repository, and of one branch of it (repositoryRef = repository + "\n" + ref), newest first.
      byRepository: { hashKey: "repository", rangeKey: "createdAt", projection: "keys-only" },
      byRepositoryRef: { hashKey: "repositoryRef", rangeKey: "createdAt", projection: "keys-only" },
      // Sparse: only forks' jobs waiting for approval, by repository and commit (what an approval names).
      byHeldCommit: { hashKey: "heldKey", rangeKey: "jobId" },
      // Sparse: only pull requests' jobs, by repository and number (what closing one cancels).
      byPullRequest: { hashKey: "pullRequestKey", rangeKey: "createdAt", projection: "keys-only" },
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
  /** Every derivation Nimbus knows, shared by all jobs: status, lease, where its inputs and outputs are. */
  Derivations: {
    fields: {
      drvPath: "string",
      queuedShard: "string",
      queuedAt: "string",
      dueShard: "string",
      dueAt: "string",
      propagateShard: "string",
      buildingShard: "string",
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
      // Sparse: only builds leased to a session, so the sweeper can find leases whose session is gone.
      byBuilding: { hashKey: "buildingShard", rangeKey: "updatedAt" },
    },
  },
  /**
   * What a waiting derivation still waits for, past what its item holds (storage/inputs-on-item.ts):
   * one row per input not yet built, deleted when it is, so no item grows with the number of inputs.
   */
  PendingInputs: {
    fields: { drvPath: "string", inputDrv: "string" },
    primaryIndex: { hashKey: "drvPath", rangeKey: "inputDrv" },
  },
  /**
   * dependent → input: every input a derivation was registered as waiting for (built by
   * Nimbus), kept after it is built, so dispatch finds where each one's outputs are. Rows past
   * what its item holds, for the same reason as PendingInputs.
   */
  DerivationInputs: {
    fields: { drvPath: "string", inputDrv: "string" },
    primaryIndex: { hashKey: "drvPath", rangeKey: "inputDrv" },
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
      // Keys only: its readers want the job ids, and a row's status copy changes with every move.
      byDrv: { hashKey: "drvPath", rangeKey: "jobId", projection: "keys-only" },
    },
  },
  /** A job's attributes (path → derivation or evaluation error). */
  JobAttributes: {
    fields: { jobId: "string", attribute: "string", errorJobId: "string" },
    primaryIndex: { hashKey: "jobId", rangeKey: "attribute" },
    // Sparse: only attributes that did not evaluate (errorJobId = jobId is set on those alone).
    globalIndexes: { byJobError: { hashKey: "errorJobId", rangeKey: "attribute" } },
  },
  /** Build logs in numbered chunks per derivation. */
  BuildLogs: {
    fields: { drvPath: "string", chunk: "number" },
    primaryIndex: { hashKey: "drvPath", rangeKey: "chunk" },
  },
  /**
   * A job's effects (docs/effects.md): one per effect attribute, with its status and run. Each
   * belongs to a line — repository, ref and attribute — on which effects run one at a time, in
   * job order.
   */
  Effects: {
    fields: { jobId: "string", attribute: "string", activeLine: "string", order: "string", readyShard: "string" },
    primaryIndex: { hashKey: "jobId", rangeKey: "attribute" },
    globalIndexes: {
      // Sparse: effects not yet finished, by line and job order (who is before whom).
      byLine: { hashKey: "activeLine", rangeKey: "order" },
      // Sparse: effects whose builds are done and that wait for their turn or an agent; the sweeper looks at them.
      byReady: { hashKey: "readyShard", rangeKey: "order" },
    },
  },
  /**
   * `herculesCI.onSchedule` handlers of each repository's default branch (docs/effects.md,
   * "Schedules"): when each runs next, and the commit it runs.
   */
  Schedules: {
    fields: { repository: "string", name: "string", dueShard: "string", nextRunAt: "string" },
    primaryIndex: { hashKey: "repository", rangeKey: "name" },
    // The sweeper reads only the schedules whose time has come: nothing when none is due.
    globalIndexes: { byNextRun: { hashKey: "dueShard", rangeKey: "nextRunAt" } },
  },
  /** One per line while an effect runs on it: the lock that keeps its effects one at a time. */
  EffectLines: {
    fields: { lineKey: "string" },
    primaryIndex: { hashKey: "lineKey" },
  },
  /**
   * Dashboard sign-in: one-time codes (`code#<sha256>`) and browser sessions
   * (`session#<sha256 of the cookie>`), stored hashed, each with its expiry.
   */
  DashboardSessions: {
    fields: { id: "string" },
    primaryIndex: { hashKey: "id" },
    ttl: "expiresAtEpoch",
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
  /** The built-in cache's index (docs/cache.md): store path hash → its narinfo fields and NAR file. */
  CachePaths: {
    fields: { storeHash: "string", useShard: "string", lastUsedAt: "string", fileKey: "string" },
    primaryIndex: { hashKey: "storeHash" },
    globalIndexes: {
      // Every path, least recently used first: where retention looks for what to remove.
      byLastUsed: { hashKey: "useShard", rangeKey: "lastUsedAt" },
      // Which paths use a NAR file (files are named by their hash and may be shared).
      byFile: { hashKey: "fileKey", rangeKey: "storeHash" },
    },
  },
  /** reference → referrer between cached paths: a path something refers to is never removed. */
  CacheRefs: {
    fields: { reference: "string", referrer: "string" },
    primaryIndex: { hashKey: "reference", rangeKey: "referrer" },
  },
  /** Tokens scoped to the built-in cache (read or write), stored hashed. */
  CacheTokens: {
    fields: { tokenId: "string" },
    primaryIndex: { hashKey: "tokenId" },
  },
  /** One item: the cache's path count, bytes, and its last collection. */
  CacheStats: {
    fields: { statsKey: "string" },
    primaryIndex: { hashKey: "statsKey" },
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
  fifo: boolean;
  visibilityTimeoutSeconds: number;
  /**
   * The handler its messages are delivered to, in batches of at most `batchSize` (a Lambda
   * event source in AWS, a poller in the local runtime); it answers with the messages that
   * failed (`batchItemFailures`), which come back after the visibility timeout.
   */
  consumer?: { handler: string; batchSize: number };
}

/**
 * Static queues (`Resource.<Name>.url`). Build queues are not here: they are created on first
 * use, one per (system, features), named by `buildQueueName`.
 */
export const queues = {
  /** Evaluations waiting for an agent with a free slot (dispatch receives from it). */
  Evaluations: { fifo: true, visibilityTimeoutSeconds: 60 },
  /** Effects whose turn has come, waiting for an agent of their system (not `Effects`: that is the table's name). */
  EffectQueue: { fifo: true, visibilityTimeoutSeconds: 60 },
  /**
   * One check per session whose connection closed, delayed by the disconnect grace
   * (per-message DelaySeconds: a standard queue); the consumer ends the session if its agent
   * did not come back (docs/reliability.md, "Fast re-queue").
   */
  DisconnectChecks: {
    fifo: false,
    visibilityTimeoutSeconds: 60,
    consumer: { handler: "functions/queues/disconnect-checks.handler", batchSize: 10 },
  },
  /**
   * Fan-out continuations (docs/architecture.md, "Fan-out in pages"): the next page of a settle's
   * dependents or of a cancelled job's derivations, one message per page, one page per
   * invocation. FIFO: one derivation's or job's pages run in turn, and a copy of a page sent
   * again within SQS's deduplication window is dropped.
   */
  FanOut: {
    fifo: true,
    visibilityTimeoutSeconds: 60,
    consumer: { handler: "functions/queues/fan-out.handler", batchSize: 1 },
  },
} as const satisfies Record<string, QueueSpec>;
export type QueueName = keyof typeof queues;

/** Every build queue's name starts with this, so IAM can grant exactly those. */
export const buildQueuePrefix = (app: string, stage: string) => `${app}-${stage}-build-`;

export const secrets = [
  "ApiAdminToken",
  "GithubWebhookSecret",
  "GithubAppId",
  "GithubAppPrivateKey",
  "GithubToken",
  "CacheSigningKey",
  "CachePublicKey",
] as const;
export type SecretName = (typeof secrets)[number];

/**
 * What talks to GitHub reads: the App's id and key or a personal token, and the webhook secret
 * (packages/github checks them as one setting; docs/github.md). Unset ones hold `none`.
 */
export const githubSecrets = ["GithubWebhookSecret", "GithubAppId", "GithubAppPrivateKey", "GithubToken"] as const satisfies readonly SecretName[];

/**
 * The handlers that talk to GitHub: they take its webhooks, report jobs that change (the agents'
 * frames settle them, the sweeper retries reports, cancel and rerun change them, a lost agent's
 * builds that used up their retries fail them) or hand out evaluations of private repositories
 * (with a clone token minted then).
 */
export const githubHandlers: readonly string[] = [
  "functions/webhooks/github.handler",
  "functions/socket/default.handler",
  "functions/sweeper.handler",
  "functions/queues/disconnect-checks.handler",
  "functions/queues/fan-out.handler",
  "functions/api/jobs-cancel.handler",
  "functions/api/jobs-rerun.handler",
];

/** The handlers that answer without the admin token (signed webhooks, the agents' discovery). */
const publicHandlers: readonly string[] = ["functions/webhooks/github.handler", "functions/api/service-info.handler"];

/**
 * The built-in cache's key pair (docs/cache.md): only the handler that serves narinfos signs
 * with the secret half; those that tell agents and users which key to trust read the public one.
 */
export const cacheSigningHandlers: readonly string[] = ["functions/cache/narinfo.handler"];
export const cachePublicKeyHandlers: readonly string[] = ["functions/socket/default.handler", "functions/api/cache-info.handler"];

/** The secrets one handler is linked to in AWS: only those it reads (docs/security.md). */
export function handlerSecrets(handler: string): SecretName[] {
  const admin: SecretName[] = handler.startsWith("functions/api/") && !publicHandlers.includes(handler) ? ["ApiAdminToken"] : [];
  return [
    ...admin,
    ...(githubHandlers.includes(handler) ? githubSecrets : []),
    ...(cacheSigningHandlers.includes(handler) ? (["CacheSigningKey"] as const) : []),
    ...(cachePublicKeyHandlers.includes(handler) ? (["CachePublicKey"] as const) : []),
  ];
}

/** The built-in cache's bucket (`Resource.CacheBucket.name`): NAR files under `nar/`. Never public. */
export const cacheBucket = { name: "CacheBucket" } as const;

/**
 * Variables `sst deploy` hands from its own environment to every function, when set there:
 * where GitHub reports link to and another GitHub API (docs/github.md), the timing knobs
 * (docs/reliability.md, "Timing knobs"; platform/timing.ts reads them), and the built-in
 * cache's retention and limits (docs/cache.md).
 */
export const deployEnvironmentNames = [
  "NIMBUS_PUBLIC_URL",
  "NIMBUS_GITHUB_API_URL",
  "NIMBUS_HEARTBEAT_INTERVAL_MS",
  "NIMBUS_DISCONNECT_GRACE_MS",
  "NIMBUS_SESSION_GRACE_MS",
  "NIMBUS_REQUEUE_AFTER_MS",
  "NIMBUS_RETRY_BASE_MS",
  "NIMBUS_RETRY_MAX_MS",
  "NIMBUS_MAX_ATTEMPTS",
  "NIMBUS_MAX_EVALUATION_ATTEMPTS",
  "NIMBUS_EVALUATION_TIMEOUT_MS",
  "NIMBUS_SWEEP_BUDGET_MS",
  "NIMBUS_FULL_CLASS_TRUST_MS",
  "NIMBUS_FAN_OUT_PAGE",
  "NIMBUS_CACHE_RETENTION_DAYS",
  "NIMBUS_CACHE_COLLECT_BATCH",
  "NIMBUS_CACHE_VERIFY_READ_BYTES",
  "NIMBUS_CACHE_URL_SECONDS",
] as const;

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
    { route: "GET /api/schedules", handler: "functions/api/schedules-list.handler" },
    { route: "GET /api/jobs/{id}/effects/{attribute}/log", handler: "functions/api/effect-log.handler" },
    { route: "GET /api/jobs/{id}/summary", handler: "functions/api/jobs-summary.handler" },
    { route: "GET /api/jobs/{id}/attributes", handler: "functions/api/job-attributes.handler" },
    { route: "GET /api/derivations/{drv}", handler: "functions/api/derivation-get.handler" },
    { route: "POST /api/dashboard/codes", handler: "functions/api/dashboard-codes.handler" },
    { route: "POST /api/dashboard/sign-in", handler: "functions/api/dashboard-sign-in.handler" },
    { route: "GET /api/dashboard/session", handler: "functions/api/dashboard-session.handler" },
    { route: "POST /api/dashboard/sign-out", handler: "functions/api/dashboard-sign-out.handler" },
    // The built-in cache (docs/cache.md): Nix's HTTP binary cache protocol, plus the bulk query.
    { route: "GET /cache/nix-cache-info", handler: "functions/cache/nix-cache-info.handler" },
    { route: "POST /cache/missing", handler: "functions/cache/missing.handler" },
    { route: "ANY /cache/{file}", handler: "functions/cache/narinfo.handler" },
    { route: "ANY /cache/nar/{file}", handler: "functions/cache/nar.handler" },
    { route: "GET /api/cache", handler: "functions/api/cache-info.handler" },
    { route: "GET /api/cache/tokens", handler: "functions/api/cache-tokens-list.handler" },
    { route: "POST /api/cache/tokens", handler: "functions/api/cache-tokens-create.handler" },
    { route: "DELETE /api/cache/tokens/{id}", handler: "functions/api/cache-tokens-revoke.handler" },
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
