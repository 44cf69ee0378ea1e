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
  /** Open agent connections: `connectionId` → token, agent info, connectedAt, lastSeen. */
  Connections: {
    fields: { connectionId: "string" },
    primaryIndex: { hashKey: "connectionId" },
  },
} as const satisfies Record<string, TableSpec>;
export type TableName = keyof typeof tables;

/**
 * `sst.Secret`s in AWS; generated into `<data dir>/secrets.json` locally.
 * ApiAdminToken: bearer token for the JSON API. GithubWebhookSecret: HMAC key for webhooks.
 */
export const secrets = ["ApiAdminToken", "GithubWebhookSecret"] as const;
export type SecretName = (typeof secrets)[number];

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
