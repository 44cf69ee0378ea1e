/**
 * The events API Gateway WebSocket APIs give Lambda (`$connect`, `$disconnect`, `$default`).
 * The local gateway produces exactly these shapes; handlers never know which one sent them.
 */
export interface SocketRequestContext {
  routeKey: string;
  eventType: "CONNECT" | "DISCONNECT" | "MESSAGE";
  connectionId: string;
  domainName: string;
  stage: string;
  apiId: string;
  requestId: string;
  extendedRequestId: string;
  requestTime: string;
  requestTimeEpoch: number;
  connectedAt: number;
  messageDirection: "IN";
  messageId?: string;
  identity: { sourceIp: string; userAgent?: string };
  disconnectStatusCode?: number;
  disconnectReason?: string;
}

export interface SocketEvent {
  requestContext: SocketRequestContext;
  /** `$connect` and `$disconnect` only. */
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  /** `$connect` only. */
  queryStringParameters?: Record<string, string>;
  multiValueQueryStringParameters?: Record<string, string[]>;
  /** `$default` only. */
  body?: string;
  isBase64Encoded: boolean;
}

/** A non-2xx `statusCode` from `$connect` refuses the connection with that HTTP status. */
export interface SocketResult {
  statusCode: number;
  body?: string;
  headers?: Record<string, string>;
}

export type SocketHandler = (event: SocketEvent) => Promise<SocketResult>;
