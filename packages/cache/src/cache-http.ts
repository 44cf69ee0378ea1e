/**
 * HTTP requests to a cache, with failures turned into CacheUnreachableError naming the cache:
 * "connection refused", "timed out after 30 s", "HTTP 401 (check the token)".
 */
import { CacheUnreachableError } from "./errors.ts";

export interface CacheRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  signal?: AbortSignal;
  /** Default 30 s. */
  timeoutMs?: number;
}

/** Sends the request; a network failure or timeout throws CacheUnreachableError (the status is the caller's to judge). */
export async function cacheFetch(cache: string, url: string, request: CacheRequest = {}): Promise<Response> {
  const timeoutMs = request.timeoutMs ?? 30_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
  try {
    return await fetch(url, {
      method: request.method ?? "GET",
      headers: request.headers,
      body: request.body,
      signal,
      // A stream body is sent as it is read.
      ...(request.body instanceof ReadableStream ? { duplex: "half" } : {}),
    } as RequestInit);
  } catch (err) {
    if (request.signal?.aborted) throw err;
    throw new CacheUnreachableError(cache, `${describeNetworkError(err, timeout.aborted, timeoutMs)} (${redact(url)})`);
  }
}

/** Sends the request and requires a 2xx answer; anything else throws CacheUnreachableError with the status and the server's words. */
export async function cacheFetchOk(cache: string, url: string, request: CacheRequest = {}): Promise<Response> {
  const response = await cacheFetch(cache, url, request);
  if (!response.ok) throw new CacheUnreachableError(cache, await describeStatus(response, request.method ?? "GET", url));
  return response;
}

export async function describeStatus(response: Response, method: string, url: string): Promise<string> {
  const text = (await response.text().catch(() => "")).trim();
  let said = text;
  try {
    // Attic answers errors as {error, message}; others as {error} or {message}.
    const json = JSON.parse(text) as { message?: unknown; error?: unknown };
    if (typeof json.message === "string") said = typeof json.error === "string" ? `${json.error}: ${json.message}` : json.message;
    else if (typeof json.error === "string") said = json.error;
  } catch {
    // Plain text.
  }
  const hint = response.status === 401 || response.status === 403 ? " — check the cache's token or credentials" : "";
  return `HTTP ${response.status}${said ? `: ${said.slice(0, 300)}` : ""}${hint} (${method} ${redact(url)})`;
}

function describeNetworkError(err: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs / 1000} s`;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === "ECONNREFUSED") return "connection refused";
  if (cause?.code === "ENOTFOUND" || cause?.code === "EAI_AGAIN") return "host not found";
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ""}`;
  return (err as Error).message;
}

/** A URL fit for a message: no query string (presigned URLs carry credentials there). */
export function redact(url: string): string {
  const i = url.indexOf("?");
  return i === -1 ? url : `${url.slice(0, i)}?…`;
}

export function basicAuthorization(login: string, password: string): string {
  return `Basic ${Buffer.from(`${login}:${password}`).toString("base64")}`;
}
