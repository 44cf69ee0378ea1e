import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { ApiError } from "@nimbus/protocol";
import type { z } from "zod";
import { badRequest, NimbusError, unauthorized } from "../platform/errors.ts";
import { secretValue } from "../platform/linked-resources.ts";
import { bearerToken, secretsEqual } from "../platform/token-secret.ts";

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

export function json(statusCode: number, body: unknown): HttpResult {
  return { statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

const errorBody = (code: string, message: string): ApiError => ({ error: { code, message } });

/** Checks the JSON API's bearer token against the `ApiAdminToken` secret. */
export function requireAdmin(event: HttpEvent): void {
  const token = bearerToken(event.headers);
  if (!token) throw unauthorized("missing bearer token — pass `--token` (or run the CLI beside the local stack's data directory)");
  if (!secretsEqual(token, secretValue("ApiAdminToken"))) throw unauthorized("API token refused — use the stack's ApiAdminToken");
}

/** Parses a JSON body against a schema; an absent body is `{}`. */
export function parseBody<T extends z.ZodType>(event: HttpEvent, schema: T): z.infer<T> {
  const raw = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body) : "";
  let value: unknown = {};
  if (raw.trim() !== "") {
    try {
      value = JSON.parse(raw);
    } catch {
      throw badRequest("request body is not valid JSON");
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
    throw badRequest(`invalid request body: ${issues}`);
  }
  return parsed.data;
}

/**
 * Wraps a JSON API handler: admin auth unless `public`, typed errors become their status with
 * a message, anything else a 500 without internals (the details go to the log).
 */
export function apiHandler(
  fn: (event: HttpEvent) => Promise<HttpResult>,
  options: { public?: boolean } = {},
): (event: HttpEvent) => Promise<HttpResult> {
  return async (event) => {
    try {
      if (!options.public) requireAdmin(event);
      return await fn(event);
    } catch (error) {
      if (error instanceof NimbusError) return json(error.status, errorBody(error.code, error.message));
      console.error(`${event.routeKey} failed:`, error);
      return json(500, errorBody("internal", "internal error — see the service logs"));
    }
  };
}
