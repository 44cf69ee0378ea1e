/**
 * API Gateway HTTP API semantics: route selection, requests as payload format 2.0 events,
 * and handler results turned into HTTP responses by the same rules.
 */
import type { IncomingMessage } from "node:http";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { gatewayId, requestTime, sourceIp } from "./api-gateway-format.ts";

export interface RouteSpec {
  /** `METHOD /path/{param}/{rest+}`, `ANY /path` or `$default`. */
  route: string;
  handler: string;
}

export class InvalidRouteError extends Error {
  override name = "InvalidRouteError";
  constructor(route: string, why: string) {
    super(`invalid route key "${route}": ${why}`);
  }
}

type Segment = { kind: "literal"; value: string } | { kind: "param"; name: string } | { kind: "greedy"; name: string };

interface CompiledRoute extends RouteSpec {
  method: string;
  segments: Segment[];
}

export interface RouteMatch {
  routeKey: string;
  handler: string;
  pathParameters?: Record<string, string>;
}

/** Ranks for choosing among matching routes: literal beats `{param}` beats `{greedy+}`. */
const segmentRank = { literal: 0, param: 1, greedy: 2 } as const;

export class HttpRouter {
  private readonly routes: CompiledRoute[];
  private readonly fallback?: RouteSpec;

  constructor(routes: readonly RouteSpec[]) {
    this.routes = [];
    for (const spec of routes) {
      if (spec.route === "$default") {
        this.fallback = spec;
        continue;
      }
      this.routes.push(compileRoute(spec));
    }
  }

  /** The route API Gateway would pick for this method and raw (still percent-encoded) path. */
  match(method: string, rawPath: string): RouteMatch | undefined {
    const parts = rawPath === "/" ? [] : rawPath.split("/").slice(1).map(decodeSegment);
    let best: { route: CompiledRoute; params: Record<string, string> } | undefined;
    for (const route of this.routes) {
      if (route.method !== "ANY" && route.method !== method) continue;
      const params = matchSegments(route.segments, parts);
      if (params && (!best || moreSpecific(route, best.route))) best = { route, params };
    }
    if (best) {
      const hasParams = Object.keys(best.params).length > 0;
      return { routeKey: best.route.route, handler: best.route.handler, ...(hasParams ? { pathParameters: best.params } : {}) };
    }
    return this.fallback ? { routeKey: "$default", handler: this.fallback.handler } : undefined;
  }
}

function compileRoute(spec: RouteSpec): CompiledRoute {
  const match = /^([A-Z]+) (\/.*)$/.exec(spec.route);
  if (!match) throw new InvalidRouteError(spec.route, 'expected "METHOD /path" or "$default"');
  const [, method, path] = match as unknown as [string, string, string];
  const segments: Segment[] = path === "/" ? [] : path.split("/").slice(1).map((part): Segment => {
    const variable = /^\{([A-Za-z0-9_.-]+)(\+?)\}$/.exec(part);
    if (!variable) return { kind: "literal", value: part };
    return variable[2] ? { kind: "greedy", name: variable[1]! } : { kind: "param", name: variable[1]! };
  });
  const greedy = segments.findIndex((s) => s.kind === "greedy");
  if (greedy !== -1 && greedy !== segments.length - 1) {
    throw new InvalidRouteError(spec.route, "a greedy {name+} variable must be the last segment");
  }
  return { ...spec, method, segments };
}

function matchSegments(segments: Segment[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.kind === "greedy") {
      const rest = parts.slice(i);
      if (rest.length === 0 || rest.join("/") === "") return undefined;
      params[segment.name] = rest.join("/");
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (segment.kind === "literal" ? part !== segment.value : part === "") return undefined;
    if (segment.kind === "param") params[segment.name] = part;
  }
  return parts.length === segments.length ? params : undefined;
}

function moreSpecific(a: CompiledRoute, b: CompiledRoute): boolean {
  const length = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < length; i++) {
    const ra = a.segments[i] ? segmentRank[a.segments[i]!.kind] : -1;
    const rb = b.segments[i] ? segmentRank[b.segments[i]!.kind] : -1;
    if (ra !== rb) return ra < rb;
  }
  return a.method !== "ANY" && b.method === "ANY";
}

function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Content types API Gateway hands over as text; anything else arrives base64-encoded. */
function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return (
    type.startsWith("text/") ||
    /^application\/([\w.-]+\+)?(json|xml)$/.test(type) ||
    type === "application/x-www-form-urlencoded" ||
    type === "application/javascript"
  );
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function textOf(body: Buffer): string | undefined {
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}

/** Query string parameters: decoded, repeated names comma-joined (`+` stays `+`, as in AWS). */
function queryParameters(rawQueryString: string): Record<string, string> | undefined {
  if (!rawQueryString) return undefined;
  const params: Record<string, string> = {};
  for (const pair of rawQueryString.split("&")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    const name = decodeSegment(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? "" : decodeSegment(pair.slice(eq + 1));
    params[name] = name in params ? `${params[name]},${value}` : value;
  }
  return params;
}

/** The payload format 2.0 event for a request; `body` is the full, already-read body. */
export function httpEvent(request: IncomingMessage, body: Buffer, match: RouteMatch): APIGatewayProxyEventV2 {
  const url = request.url ?? "/";
  const q = url.indexOf("?");
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawQueryString = q === -1 ? "" : url.slice(q + 1);
  const ip = sourceIp(request.socket.remoteAddress);

  // Lower-cased names, repeats comma-joined; cookies move to `cookies`, as in AWS.
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === "cookie") {
      cookies.push(...value.split(";").map((c) => c.trim()).filter(Boolean));
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  headers["x-forwarded-for"] = headers["x-forwarded-for"] ? `${headers["x-forwarded-for"]},${ip}` : ip;
  headers["x-forwarded-proto"] ??= "http";
  headers["x-forwarded-port"] ??= String(request.socket.localPort ?? "");

  const domainName = headers.host ?? "localhost";
  const now = new Date();
  const requestId = gatewayId();
  const event: APIGatewayProxyEventV2 = {
    version: "2.0",
    routeKey: match.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(rawQueryString ? { queryStringParameters: queryParameters(rawQueryString) } : {}),
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      domainName,
      domainPrefix: /^[\d.:]+$|^\[/.test(domainName) ? domainName : domainName.split(".")[0]!,
      http: {
        method: request.method ?? "GET",
        path: rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: ip,
        userAgent: headers["user-agent"] ?? "",
      },
      requestId,
      routeKey: match.routeKey,
      stage: "$default",
      time: requestTime(now),
      timeEpoch: now.getTime(),
    },
    ...(match.pathParameters ? { pathParameters: match.pathParameters } : {}),
    isBase64Encoded: false,
  };
  if (body.length > 0) {
    const text = isTextContentType(headers["content-type"]) ? textOf(body) : undefined;
    event.body = text ?? body.toString("base64");
    event.isBase64Encoded = text === undefined;
  }
  return event;
}

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
}

export class InvalidHandlerResultError extends Error {
  override name = "InvalidHandlerResultError";
}

/**
 * API Gateway's reading of a payload 2.0 result: an object with `statusCode` is a structured
 * response; anything else is a 200 whose JSON body is the value (a string goes out as is).
 */
export function httpResponse(result: unknown): HttpResponse {
  const structured = typeof result === "object" && result !== null && !Array.isArray(result) && "statusCode" in result;
  if (!structured) {
    const body = typeof result === "string" ? result : JSON.stringify(result ?? null);
    return { statusCode: 200, headers: { "content-type": "application/json" }, cookies: [], body: Buffer.from(body) };
  }
  const value = result as APIGatewayProxyStructuredResultV2;
  const statusCode = Number(value.statusCode);
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) {
    throw new InvalidHandlerResultError(`handler returned an invalid statusCode: ${String(value.statusCode)}`);
  }
  const headers: Record<string, string> = {};
  for (const [name, headerValue] of Object.entries(value.headers ?? {})) headers[name.toLowerCase()] = String(headerValue);
  if (value.body !== undefined && typeof value.body !== "string") {
    throw new InvalidHandlerResultError("handler returned a non-string body; serialize it first");
  }
  const body = value.body === undefined ? Buffer.alloc(0) : Buffer.from(value.body, value.isBase64Encoded ? "base64" : "utf8");
  return { statusCode, headers, cookies: value.cookies ?? [], body };
}

/** API Gateway's own error responses. */
export function gatewayError(statusCode: number, message: string): HttpResponse {
  return {
    statusCode,
    headers: { "content-type": "application/json" },
    cookies: [],
    body: Buffer.from(JSON.stringify({ message })),
  };
}
