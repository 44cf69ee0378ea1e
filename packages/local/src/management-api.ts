/**
 * The `@connections` management API, served under the management endpoint's path so the real
 * `@aws-sdk/client-apigatewaymanagementapi` client works against it unchanged.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_MESSAGE_BYTES } from "../../protocol/src/limits.ts";
import { describeError } from "./handlers.ts";
import { PayloadTooLargeError, readBody } from "./request-body.ts";
import { ConnectionGoneError, type SocketGateway } from "./socket-gateway.ts";

/** Smithy-style error: the SDK takes the error's name from `x-amzn-errortype`. */
function sendError(response: ServerResponse, status: number, type: string, message: string): void {
  const body = JSON.stringify({ message });
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-amzn-errortype": type,
  });
  response.end(body);
}

/** Serves `{POST,GET,DELETE} <basePath>/@connections/{url-encoded id}` for the gateway's connections. */
export function createManagementApi(gateway: SocketGateway, basePath: string, log: (line: string) => void) {
  const prefix = `${basePath}/@connections/`;

  async function serve(request: IncomingMessage, response: ServerResponse, rawPath: string): Promise<void> {
    if (!rawPath.startsWith(prefix) || rawPath.length === prefix.length) {
      return sendError(response, 404, "NotFoundException", `no management operation at ${rawPath}`);
    }
    let connectionId: string;
    try {
      connectionId = decodeURIComponent(rawPath.slice(prefix.length));
    } catch {
      return sendError(response, 400, "BadRequestException", "malformed connection id in the path");
    }

    try {
      switch (request.method) {
        case "POST": {
          const data = await readBody(request, MAX_MESSAGE_BYTES);
          await gateway.post(connectionId, data);
          response.writeHead(200, { "content-length": 0 });
          return void response.end();
        }
        case "GET": {
          const info = gateway.describe(connectionId);
          const body = JSON.stringify({
            connectedAt: info.connectedAt.toISOString(),
            identity: { sourceIp: info.sourceIp, userAgent: info.userAgent },
            lastActiveAt: info.lastActiveAt.toISOString(),
          });
          response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
          return void response.end(body);
        }
        case "DELETE": {
          gateway.close(connectionId);
          response.writeHead(204);
          return void response.end();
        }
        default:
          return sendError(response, 405, "MethodNotAllowedException", `${request.method} is not a management operation`);
      }
    } catch (error) {
      if (error instanceof ConnectionGoneError) return sendError(response, 410, "GoneException", error.message);
      if (error instanceof PayloadTooLargeError) {
        return sendError(response, 413, "PayloadTooLargeException", `Message too long: the limit is ${error.limitBytes} bytes`);
      }
      log(`management api: ${request.method} ${rawPath} failed: ${describeError(error)}`);
      return sendError(response, 500, "InternalServerErrorException", "Internal server error");
    }
  }

  return {
    /** True when `rawPath` belongs to the management API. */
    owns: (rawPath: string) => rawPath === basePath || rawPath.startsWith(`${basePath}/`),
    serve,
  };
}

export type ManagementApi = ReturnType<typeof createManagementApi>;
