/**
 * The one local port: the HTTP API's routes, the WebSocket API (upgrades on the socket path)
 * and its `@connections` management API, all on one node:http server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { StaticSite } from "@nimbus/dashboard";
import { gatewayId } from "./api-gateway-format.ts";
import { describeError } from "./handlers.ts";
import { gatewayError, httpEvent, httpResponse, type HttpResponse, type HttpRouter } from "./http-events.ts";
import type { ManagementApi } from "./management-api.ts";
import { PayloadTooLargeError, readBody } from "./request-body.ts";
import type { SocketGateway } from "./socket-gateway.ts";

/** API Gateway HTTP APIs refuse request bodies over 10 MB. */
export const MAX_HTTP_BODY_BYTES = 10 * 1024 * 1024;

export interface HttpServerOptions {
  host: string;
  port: number;
  router: HttpRouter;
  invoke: (spec: string, event: unknown) => Promise<unknown>;
  /** Path agents connect to, e.g. `/agent`. */
  socketPath: string;
  gateway: SocketGateway;
  managementApi: ManagementApi;
  /** The dashboard's pages and assets, for GET paths no route has (as a StaticSite does in AWS). */
  site?: StaticSite;
  log: (line: string) => void;
}

export interface HttpServer {
  port: number;
  /** Stops listening and cuts open connections (WebSockets are the gateway's to close first). */
  stop(): Promise<void>;
}

export class PortInUseError extends Error {
  override name = "PortInUseError";
  constructor(host: string, port: number, options?: { cause?: unknown }) {
    super(`${host}:${port} is already in use; choose another port (NIMBUS_PORT or --port)`, options);
  }
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const server = createServer((request, response) => {
    handleRequest(options, request, response).catch((error: unknown) => {
      options.log(`http: ${request.method} ${request.url} failed: ${describeError(error)}`);
      if (!response.headersSent) send(response, gatewayError(500, "Internal Server Error"), gatewayId());
      else response.destroy();
    });
  });
  server.on("upgrade", (request: IncomingMessage, socket, head: Buffer) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path !== options.socketPath) {
      socket.on("error", () => {}); // a client resetting meanwhile is not the server's failure
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    options.gateway.handleUpgrade(request, socket, head).catch((error: unknown) => {
      options.log(`socket: upgrade failed: ${describeError(error)}`);
      socket.destroy();
    });
  });
  await listen(server, options.host, options.port);
  return {
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? new PortInUseError(host, port, { cause: error }) : error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

async function handleRequest(options: HttpServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const rawPath = (request.url ?? "/").split("?")[0]!;
  if (options.managementApi.owns(rawPath)) return options.managementApi.serve(request, response, rawPath);

  const requestId = gatewayId();
  const match = options.router.match(request.method ?? "GET", rawPath);
  if (!match) {
    request.resume();
    const page = await options.site?.(request.method ?? "GET", rawPath);
    return send(response, page ? { ...page, cookies: [] } : gatewayError(404, "Not Found"), requestId);
  }
  let body: Buffer;
  try {
    body = await readBody(request, MAX_HTTP_BODY_BYTES);
  } catch (error) {
    if (error instanceof PayloadTooLargeError) return send(response, gatewayError(413, "Request Entity Too Large"), requestId);
    throw error;
  }

  const event = httpEvent(request, body, match);
  let result: HttpResponse;
  try {
    result = httpResponse(await options.invoke(match.handler, event));
  } catch (error) {
    options.log(`http: ${match.routeKey} request ${event.requestContext.requestId} failed: ${describeError(error)}`);
    result = gatewayError(500, "Internal Server Error");
  }
  send(response, result, event.requestContext.requestId);
}

function send(response: ServerResponse, result: HttpResponse, requestId: string): void {
  const headers: Record<string, string | string[] | number> = {
    ...result.headers,
    "apigw-requestid": requestId,
    "content-length": result.body.length,
  };
  if (result.cookies.length > 0) headers["set-cookie"] = result.cookies;
  response.writeHead(result.statusCode, headers);
  response.end(result.body);
}
