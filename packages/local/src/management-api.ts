/**
 * The `@connections` management API, served under the management endpoint's path so the real
 * `@aws-sdk/client-apigatewaymanagementapi` client works against it unchanged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
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

/** Whether `given` is `secret`, in time that does not tell how much of it matched. */
function sameSecret(given: string, secret: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(secret).digest();
  return timingSafeEqual(a, b);
}

/**
 * Serves `{POST,GET,DELETE} <basePath>/<secret>/@connections/{url-encoded id}` for the
 * gateway's connections. Without the secret every path under `basePath` is not found: the
 * public port never serves the API to a caller that is not this process's handlers.
 */
export function createManagementApi(gateway: SocketGateway, basePath: string, secret: string, log: (line: string) => void) {
  const prefix = "/@connections/";

  async function serve(request: IncomingMessage, response: ServerResponse, rawPath: string): Promise<void> {
    // <basePath>/<secret><operation>
    const rest = rawPath.slice(basePath.length + 1);
    const slash = rest.indexOf("/");
    const given = slash < 0 ? rest : rest.slice(0, slash);
    const operation = slash < 0 ? "" : rest.slice(slash);
    if (!sameSecret(given, secret)) {
      request.resume();
      return sendError(response, 404, "NotFoundException", "Not Found");
    }
    if (!operation.startsWith(prefix) || operation.length === prefix.length) {
      return sendError(response, 404, "NotFoundException", `no management operation at ${basePath}/…${operation}`);
    }
    let connectionId: string;
    try {
      connectionId = decodeURIComponent(operation.slice(prefix.length));
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
      log(`management api: ${request.method} ${basePath}/…${operation} failed: ${describeError(error)}`);
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
