import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { beforeEach, describe, test } from "node:test";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { httpApi } from "@nimbus/service/resource-specs";
import { HttpRouter } from "../src/http-events.ts";
import { useFixtureStack } from "./fixtures/handlers.ts";

const handlerOf = (route: string) => httpApi.routes.find((r) => r.route === route)!.handler;
const createToken = handlerOf("POST /api/tokens");
const revokeToken = handlerOf("DELETE /api/tokens/{id}");
const listAgents = handlerOf("GET /api/agents");

const local = useFixtureStack();
const { fixtures, logs } = local;

beforeEach(() => {
  fixtures.reset();
  logs.length = 0;
});

describe("HTTP API routes", () => {
  test("a request becomes a payload 2.0 event", async () => {
    fixtures.on(createToken, async () => ({ statusCode: 201, body: "{}" }));
    const response = await fetch(`${local.stack.url}/api/tokens?name=ci%20box&x=1&x=2&plus=a+b`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Custom": "Yes", Cookie: "a=1; b=2" },
      body: '{"name":"ci"}',
    });
    assert.equal(response.status, 201);
    assert.ok(response.headers.get("apigw-requestid"));
    const [event] = fixtures.events<APIGatewayProxyEventV2>(createToken);
    assert.ok(event);
    const host = new URL(local.stack.url).host;
    assert.equal(event.version, "2.0");
    assert.equal(event.routeKey, "POST /api/tokens");
    assert.equal(event.rawPath, "/api/tokens");
    assert.equal(event.rawQueryString, "name=ci%20box&x=1&x=2&plus=a+b");
    assert.deepEqual(event.queryStringParameters, { name: "ci box", x: "1,2", plus: "a+b" });
    assert.equal(event.headers["content-type"], "application/json");
    assert.equal(event.headers["x-custom"], "Yes");
    assert.equal(event.headers.host, host);
    assert.equal(event.headers.cookie, undefined);
    assert.deepEqual(event.cookies, ["a=1", "b=2"]);
    assert.equal(event.pathParameters, undefined);
    assert.equal(event.body, '{"name":"ci"}');
    assert.equal(event.isBase64Encoded, false);
    const ctx = event.requestContext;
    assert.equal(ctx.routeKey, "POST /api/tokens");
    assert.equal(ctx.stage, "$default");
    assert.equal(ctx.domainName, host);
    assert.equal(ctx.http.method, "POST");
    assert.equal(ctx.http.path, "/api/tokens");
    assert.equal(ctx.http.protocol, "HTTP/1.1");
    assert.equal(ctx.http.sourceIp, "127.0.0.1");
    assert.equal(typeof ctx.http.userAgent, "string");
    assert.equal(ctx.requestId, response.headers.get("apigw-requestid"));
    assert.match(ctx.time, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    assert.ok(Math.abs(ctx.timeEpoch - Date.now()) < 5_000);
    assert.equal(typeof ctx.accountId, "string");
    assert.equal(typeof ctx.apiId, "string");
  });

  test("path parameters are URL-decoded; repeated headers are comma-joined", async () => {
    fixtures.on(revokeToken, async () => ({ statusCode: 204 }));
    const response = await new Promise<number>((resolve, reject) => {
      // fetch cannot repeat a header; node:http can.
      const req = httpRequest(`${local.stack.url}/api/tokens/a%2Fb%20c`, {
        method: "DELETE",
        headers: { "X-Multi": ["one", "two"] },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(response, 204);
    const [event] = fixtures.events<APIGatewayProxyEventV2>(revokeToken);
    assert.deepEqual(event?.pathParameters, { id: "a/b c" });
    assert.equal(event?.rawPath, "/api/tokens/a%2Fb%20c");
    assert.equal(event?.headers["x-multi"], "one,two");
    assert.equal(event?.body, undefined);
  });

  test("a binary body arrives base64-encoded", async () => {
    const bytes = Buffer.from([0, 255, 1, 254]);
    await fetch(`${local.stack.url}/api/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    const [event] = fixtures.events<APIGatewayProxyEventV2>(createToken);
    assert.equal(event?.isBase64Encoded, true);
    assert.deepEqual(Buffer.from(event?.body ?? "", "base64"), bytes);
  });

  test("no route → 404 Not Found; a route's path with another method → 404 too", async () => {
    for (const [method, path] of [["GET", "/nope"], ["PUT", "/api/agents"], ["GET", "/api/tokens/x/y"]] as const) {
      const response = await fetch(`${local.stack.url}${path}`, { method });
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.deepEqual(await response.json(), { message: "Not Found" });
    }
  });

  test("page paths get the dashboard, its assets are served, and API paths keep their 404", async () => {
    const page = await fetch(`${local.stack.url}/jobs/j0193a1b2c3d4deadbeef`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const html = await page.text();
    const script = /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    assert.ok(script, html);
    const asset = await fetch(`${local.stack.url}${script}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get("cache-control") ?? "", /immutable/);
    await asset.arrayBuffer();
    for (const path of ["/api/nope", "/webhooks/nope", "/assets/../package.json", "/cache/log/nope"]) {
      const response = await fetch(`${local.stack.url}${path}`);
      assert.equal(response.status, 404, path);
      assert.deepEqual(await response.json(), { message: "Not Found" }, path);
    }
  });

  test("a body over 10 MB → 413 without invoking the handler", async () => {
    const response = await fetch(`${local.stack.url}/api/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: Buffer.alloc(10 * 1024 * 1024 + 1, 32),
    });
    assert.equal(response.status, 413);
    assert.equal(fixtures.events(createToken).length, 0);
  });
});

describe("handler results", () => {
  async function resultOf(result: unknown): Promise<Response> {
    fixtures.on(listAgents, async () => result);
    return fetch(`${local.stack.url}/api/agents`);
  }

  test("a structured result sets status, headers, cookies and body", async () => {
    const response = await resultOf({
      statusCode: 202,
      headers: { "Content-Type": "text/plain", "X-Count": 3 },
      cookies: ["s=1; Path=/", "t=2"],
      body: "accepted",
    });
    assert.equal(response.status, 202);
    assert.equal(response.headers.get("content-type"), "text/plain");
    assert.equal(response.headers.get("x-count"), "3");
    assert.deepEqual(response.headers.getSetCookie(), ["s=1; Path=/", "t=2"]);
    assert.equal(await response.text(), "accepted");
  });

  test("a base64 result body is decoded", async () => {
    const response = await resultOf({ statusCode: 200, body: Buffer.from([1, 2, 3]).toString("base64"), isBase64Encoded: true });
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), Buffer.from([1, 2, 3]));
  });

  test("any other value is a 200 JSON response of it", async () => {
    const response = await resultOf({ agents: [{ id: "a" }] });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.deepEqual(await response.json(), { agents: [{ id: "a" }] });
  });

  test("a throwing handler → 500 Internal Server Error, logged on one line", async () => {
    fixtures.on(listAgents, async () => {
      throw new Error("no table");
    });
    const response = await fetch(`${local.stack.url}/api/agents`);
    assert.equal(response.status, 500);
    assert.deepEqual(await response.json(), { message: "Internal Server Error" });
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /^http: GET \/api\/agents request \S+ failed: Error: no table$/);
  });

  test("an invalid statusCode → 500", async () => {
    const response = await resultOf({ statusCode: "teapot" });
    assert.equal(response.status, 500);
  });
});

describe("route selection (API Gateway's precedence)", () => {
  const router = new HttpRouter([
    { route: "GET /pets/{id}", handler: "param" },
    { route: "GET /pets/dog", handler: "literal" },
    { route: "ANY /pets/{proxy+}", handler: "greedy" },
    { route: "ANY /files/{path+}", handler: "files" },
    { route: "POST /pets/{id}", handler: "post" },
    { route: "GET /", handler: "root" },
  ]);

  test("literal beats {param} beats {greedy+}; a specific method beats ANY", () => {
    assert.equal(router.match("GET", "/pets/dog")?.handler, "literal");
    assert.deepEqual(router.match("GET", "/pets/cat"), { routeKey: "GET /pets/{id}", handler: "param", pathParameters: { id: "cat" } });
    assert.equal(router.match("POST", "/pets/cat")?.handler, "post");
    assert.equal(router.match("DELETE", "/pets/cat")?.handler, "greedy");
    assert.deepEqual(router.match("GET", "/pets/cat/toys/1")?.pathParameters, { proxy: "cat/toys/1" });
    assert.equal(router.match("GET", "/")?.handler, "root");
  });

  test("{proxy+} needs at least one segment and decodes it", () => {
    assert.equal(router.match("GET", "/files"), undefined);
    assert.equal(router.match("GET", "/files/"), undefined);
    assert.deepEqual(router.match("PUT", "/files/a%20b/c")?.pathParameters, { path: "a b/c" });
  });

  test("$default catches what nothing else matches", () => {
    const withDefault = new HttpRouter([{ route: "$default", handler: "fallback" }, { route: "GET /a", handler: "a" }]);
    assert.equal(withDefault.match("GET", "/a")?.handler, "a");
    assert.deepEqual(withDefault.match("GET", "/b"), { routeKey: "$default", handler: "fallback" });
  });

  test("a bad route key is rejected with a clear error", () => {
    assert.throws(() => new HttpRouter([{ route: "/no-method", handler: "x" }]), /invalid route key "\/no-method"/);
    assert.throws(() => new HttpRouter([{ route: "GET /{a+}/b", handler: "x" }]), /must be the last segment/);
  });
});
