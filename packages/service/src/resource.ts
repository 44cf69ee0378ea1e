import { Resource } from "sst";
import type { SecretName, TableName } from "./resources.ts";

/** The linked resources handlers read, typed here so handlers need no generated `sst-env.d.ts`. */
interface LinkedResources {
  AgentSocket: { url: string; managementEndpoint: string };
  HttpApi: { url: string };
}

const linked = Resource as unknown as LinkedResources &
  Record<TableName, { name: string }> &
  Record<SecretName, { value: string }>;

export const tableName = (table: TableName): string => linked[table].name;
export const secretValue = (secret: SecretName): string => linked[secret].value;
export const agentSocketUrl = (): string => linked.AgentSocket.url;
export const managementEndpoint = (): string => linked.AgentSocket.managementEndpoint;
