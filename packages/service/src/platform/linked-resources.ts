import { Resource } from "sst";
import type { QueueName, SecretName, TableName } from "./resource-specs.ts";

/** The linked resources handlers read, typed here so handlers need no generated `sst-env.d.ts`. */
interface LinkedResources {
  App: { name: string; stage: string };
  AgentSocket: { url: string; managementEndpoint: string };
  HttpApi: { url: string };
  CacheBucket: { name: string };
}

const linked = Resource as unknown as LinkedResources &
  Record<TableName, { name: string }> &
  Record<SecretName, { value: string }> &
  Record<QueueName, { url: string }>;

export const tableName = (table: TableName): string => linked[table].name;
export const secretValue = (secret: SecretName): string => linked[secret].value;
export const agentSocketUrl = (): string => linked.AgentSocket.url;
export const managementEndpoint = (): string => linked.AgentSocket.managementEndpoint;
export const queueUrl = (queue: QueueName): string => linked[queue].url;
export const appStage = (): { app: string; stage: string } => ({ app: linked.App.name, stage: linked.App.stage });
export const httpApiUrl = (): string => linked.HttpApi.url;
export const cacheBucketName = (): string => linked.CacheBucket.name;
