import { createHash } from "node:crypto";
import type { ApiError } from "@nimbus/protocol";
import type { z } from "zod";
import { badRequest, NimbusError, unauthorized } from "../platform/errors.ts";
import { secretValue } from "../platform/linked-resources.ts";
import { bearerToken, secretsEqual } from "../platform/token-secret.ts";
import { countingMoves } from "../storage/job-counts.ts";
import { checkCsrf, cookieValue, SESSION_COOKIE, sessionOf } from "./dashboard-sessions.ts";
import type { HttpEvent, HttpResult } from "./http-types.ts";

export type { HttpEvent, HttpResult } from "./http-types.ts";

export function json(statusCode: number, body: unknown, extra: { cookies?: string[] } = {}): HttpResult {
  return { statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...extra };
}

const errorBody = (code: string, message: string): ApiError => ({ error: { code, message } });

/** Checks the JSON API's bearer token against the `ApiAdminToken` secret. */
export function requireAdmin(event: HttpEvent): void {
  const token = bearerToken(event.headers);
  if (!token) throw unauthorized("missing bearer token — pass `--token` (or run the CLI beside the local stack's data directory)");
  if (!secretsEqual(token, secretValue("ApiAdminToken"))) throw unauthorized("API token refused — use the stack's ApiAdminToken");
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Who may call a route (docs/dashboard-api.md, "How a cookie is accepted"): the admin bearer
 * token, or — unless the route is `bearerOnly` — a dashboard session cookie. A request that
 * changes something with a cookie must also come from the page's own origin and carry the
 * session's CSRF token. Bearer requests need neither: browsers never attach them by themselves.
 */
export async function requireCaller(event: HttpEvent, options: { bearerOnly?: boolean } = {}): Promise<void> {
  if (bearerToken(event.headers) !== undefined || cookieValue(event, SESSION_COOKIE) === undefined) return requireAdmin(event);
  if (options.bearerOnly) throw unauthorized("this route takes the API token only: a dashboard session cannot mint credentials");
  const session = await sessionOf(event);
  if (!session) throw unauthorized("the dashboard session has ended — sign in again");
  if (!SAFE_METHODS.has(event.requestContext.http.method)) checkCsrf(event, session);
}

/** A weak ETag of the answer's body: a poll whose copy is current gets a 304 and no body. */
function conditional(event: HttpEvent, result: HttpResult): HttpResult {
  if (event.requestContext.http.method !== "GET" || result.statusCode !== 200 || typeof result.body !== "string") return result;
  const etag = `W/"${createHash("sha1").update(result.body).digest("base64url")}"`;
  const headers = { ...result.headers, etag, "cache-control": "no-cache, private" };
  const known = (event.headers?.["if-none-match"] ?? "").split(",").map((t) => t.trim());
  if (known.includes(etag)) return { statusCode: 304, headers: { etag, "cache-control": "no-cache, private" }, body: "" };
  return { ...result, headers };
}

/** Refuses a body that is not sent as JSON (a cross-site form cannot send JSON without a preflight). */
export function requireJsonBody(event: HttpEvent): void {
  const type = (event.headers?.["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") throw new NimbusError("unsupported-media-type", "send the body as JSON (content-type: application/json)", 415);
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
 * Wraps a JSON API handler: the caller check unless `public` (`bearerOnly` refuses dashboard
 * sessions), typed errors become their status with a message, anything else a 500 without
 * internals (the details go to the log); GET answers get an ETag (conditional GETs).
 */
export function apiHandler(
  fn: (event: HttpEvent) => Promise<HttpResult>,
  options: { public?: boolean; bearerOnly?: boolean } = {},
): (event: HttpEvent) => Promise<HttpResult> {
  return async (event) => {
    try {
      // Job counts moved by this request (a cancel) are written once per job at its end.
      if (!options.public) await requireCaller(event, options);
      return conditional(event, await countingMoves(() => fn(event)));
    } catch (error) {
      if (error instanceof NimbusError) return json(error.status, errorBody(error.code, error.message));
      console.error(`${event.routeKey} failed:`, error);
      return json(500, errorBody("internal", "internal error — see the service logs"));
    }
  };
}
