/**
 * The environment handlers see: the `SST_RESOURCE_<Name>` variables SST itself sets (read by
 * `Resource` from "sst") and the SDK's endpoint overrides, so handlers reach the local services.
 */
import { agentSocket, cacheBucket, httpApi, localResourceName, tables } from "@nimbus/service/resource-specs";

export const LOCAL_APP = "nimbus";
export const LOCAL_STAGE = "local";
export const LOCAL_REGION = "us-east-1";

export function localTableName(name: string): string {
  return localResourceName(LOCAL_APP, LOCAL_STAGE, name);
}

/** The built-in cache's bucket (S3 bucket names are lower case). */
export function localBucketName(): string {
  return localResourceName(LOCAL_APP, LOCAL_STAGE, cacheBucket.name).toLowerCase();
}

export interface LocalEndpoints {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  /** The S3 emulator holding the built-in cache's bucket. */
  s3Endpoint?: string;
  /** HTTP API base URL, e.g. `http://127.0.0.1:4800`. */
  httpUrl: string;
  /** Agents' WebSocket URL, e.g. `ws://127.0.0.1:4800/agent`. */
  socketUrl: string;
  /** `@connections` management endpoint, e.g. `http://127.0.0.1:4800/_gateway/<secret>`. */
  managementEndpoint: string;
}

/** Every variable the local stack sets, each resource in SST's link shape (including its `type`). */
export function localEnvironment(
  endpoints: LocalEndpoints,
  secrets: Record<string, string>,
  queueUrls: Record<string, string> = {},
): Record<string, string> {
  const resources: Record<string, unknown> = {
    App: { name: LOCAL_APP, stage: LOCAL_STAGE },
    [agentSocket.name]: {
      managementEndpoint: endpoints.managementEndpoint,
      type: "sst.aws.ApiGatewayWebSocket",
      url: endpoints.socketUrl,
    },
    [httpApi.name]: { type: "sst.aws.ApiGatewayV2", url: endpoints.httpUrl },
    [cacheBucket.name]: { name: localBucketName(), type: "sst.aws.Bucket" },
  };
  for (const name of Object.keys(tables)) {
    resources[name] = { name: localTableName(name), type: "sst.aws.Dynamo" };
  }
  for (const [name, url] of Object.entries(queueUrls)) {
    resources[name] = { type: "sst.aws.Queue", url };
  }
  for (const [name, value] of Object.entries(secrets)) {
    resources[name] = { type: "sst.sst.Secret", value };
  }

  const env: Record<string, string> = {
    AWS_REGION: LOCAL_REGION,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodbEndpoint,
    AWS_ENDPOINT_URL_SQS: endpoints.sqsEndpoint,
    ...(endpoints.s3Endpoint ? { AWS_ENDPOINT_URL_S3: endpoints.s3Endpoint } : {}),
  };
  for (const [name, value] of Object.entries(resources)) {
    env[`SST_RESOURCE_${name}`] = JSON.stringify(value);
  }
  return env;
}

/** SST's cache of parsed resources (node_modules/sst/dist/resource/shared.js), once `sst` is loaded. */
interface SstGlobals {
  __SST_RESOURCE_RAW__?: Record<string, unknown>;
  __SST_RESOURCE_ENVIRONMENT__?: Record<string, string>;
}

/**
 * Sets `env` in process.env, plus placeholder credentials when none are set (dynalite and
 * fauxqs accept any). `Resource` reads the environment once per process, so when it already
 * has, its cache is updated too: a restarted stack's values (e.g. another data directory's
 * secrets) are then what handlers see.
 */
export function applyEnvironment(env: Record<string, string>): void {
  process.env.AWS_ACCESS_KEY_ID ??= "local";
  process.env.AWS_SECRET_ACCESS_KEY ??= "local";
  Object.assign(process.env, env);

  const sst = globalThis as SstGlobals;
  for (const [key, value] of Object.entries(env)) {
    if (sst.__SST_RESOURCE_ENVIRONMENT__) sst.__SST_RESOURCE_ENVIRONMENT__[key] = value;
    if (sst.__SST_RESOURCE_RAW__ && key.startsWith("SST_RESOURCE_")) {
      sst.__SST_RESOURCE_RAW__[key.slice("SST_RESOURCE_".length)] = JSON.parse(value);
    }
  }
}
