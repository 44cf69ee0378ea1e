import { ApiError } from "@nimbus/protocol";
import type { z } from "zod";
import { CliError } from "./cli-error.ts";
import type { Target } from "./target.ts";

/** A typed client for the JSON API: every answer is checked against its schema. */
export class ApiClient {
  constructor(private readonly target: Target) {}

  get<T extends z.ZodType>(path: string, schema: T) {
    return this.request("GET", path, schema);
  }

  post<T extends z.ZodType>(path: string, schema: T, body?: unknown) {
    return this.request("POST", path, schema, body);
  }

  delete<T extends z.ZodType>(path: string, schema: T) {
    return this.request("DELETE", path, schema);
  }

  private async request<T extends z.ZodType>(method: string, path: string, schema: T, body?: unknown): Promise<z.infer<T>> {
    const { baseUrl, token, dataDir } = this.target;
    if (!token) {
      throw new CliError(`no API token: pass --token, set NIMBUS_TOKEN, or start the local stack (\`npm start\`) so ${dataDir}/secrets.json exists`);
    }
    let response: Response;
    try {
      response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new CliError(`no Nimbus API at ${baseUrl} — start the local stack with \`npm start\`, or pass --api URL`);
    }
    const text = await response.text();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new CliError(`${method} ${path}: HTTP ${response.status} with a non-JSON answer from ${baseUrl}`);
    }
    if (!response.ok) {
      const error = ApiError.safeParse(value);
      throw new CliError(error.success ? error.data.error.message : `${method} ${path}: HTTP ${response.status}`);
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new CliError(`${method} ${path}: unexpected answer from ${baseUrl} (is it a Nimbus API of this release?)`);
    return parsed.data;
  }
}
