/**
 * Requests to the JSON API from the page: every answer is checked against its zod schema, errors
 * become an ApiRequestError with the API's own message, and a GET may revalidate a copy it
 * holds with If-None-Match (a 304 hands back that copy).
 */
import { ApiError } from "@nimbus/protocol";
import type { z } from "zod";
import { requestCredentials } from "./session.ts";

export class ApiRequestError extends Error {
  override name = "ApiRequestError";
  constructor(
    message: string,
    readonly status: number,
    /** The API's error code; "no-route" when the server has no such endpoint. */
    readonly code: string,
  ) {
    super(message);
  }
}

/** Dispatched on `window` when the API answers 401: the page must sign in (again). */
export const SIGNED_OUT = "nimbus:signed-out";
/** A 404 that is no API answer: a server older than this endpoint (docs/dashboard-api.md). */
export const isMissingEndpoint = (error: unknown) => error instanceof ApiRequestError && error.code === "no-route";

export interface Cached<T> {
  value: T;
  etag?: string;
}

export async function apiGet<S extends z.ZodType>(
  path: string,
  schema: S,
  options: { signal?: AbortSignal; cached?: Cached<z.infer<S>> } = {},
): Promise<Cached<z.infer<S>>> {
  const headers: Record<string, string> = { accept: "application/json", ...requestCredentials("GET") };
  if (options.cached?.etag) headers["if-none-match"] = options.cached.etag;
  const response = await send(path, { method: "GET", headers, signal: options.signal });
  if (response.status === 304 && options.cached) return options.cached;
  const value = await readAnswer(response, schema, "GET", path);
  return { value, etag: response.headers.get("etag") ?? undefined };
}

export async function apiSend<S extends z.ZodType>(method: "POST" | "DELETE", path: string, schema: S, body?: unknown): Promise<z.infer<S>> {
  const headers: Record<string, string> = { accept: "application/json", ...requestCredentials(method) };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await send(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return readAnswer(response, schema, method, path);
}

async function send(path: string, init: RequestInit): Promise<Response> {
  try {
    // Same origin only; the browser's cache is left out so If-None-Match is ours to send.
    return await fetch(path, { ...init, credentials: "same-origin", cache: "no-store" });
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw new ApiRequestError("the Nimbus API did not answer — is the stack running?", 0, "unreachable");
  }
}

async function readAnswer<S extends z.ZodType>(response: Response, schema: S, method: string, path: string): Promise<z.infer<S>> {
  const text = await response.text();
  let value: unknown;
  try {
    value = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new ApiRequestError(`${method} ${path}: HTTP ${response.status} with an answer that is not JSON`, response.status, "not-json");
  }
  if (!response.ok) {
    if (response.status === 401) dispatchEvent(new Event(SIGNED_OUT));
    const error = ApiError.safeParse(value);
    if (error.success) throw new ApiRequestError(error.data.error.message, response.status, error.data.error.code);
    const code = response.status === 404 ? "no-route" : "http";
    throw new ApiRequestError(`${method} ${path}: HTTP ${response.status}`, response.status, code);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ApiRequestError(`${method} ${path}: the answer is not what this dashboard expects (a server of another release?)`, response.status, "bad-answer");
  }
  return parsed.data;
}
