/** Identifier and time formats API Gateway puts in the events it gives Lambda. */
import { randomBytes } from "node:crypto";

/**
 * Connection, request and message ids: 11 random bytes in base64, like `L0SM9cOFvHcCIhw=`.
 * They end in `=` and may hold `+` and `/`, so whoever puts one in a URL must encode it.
 */
export function gatewayId(): string {
  return randomBytes(11).toString("base64");
}

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `requestTime`/`time`: common log format in UTC, e.g. `21/Nov/2025:20:59:07 +0000`. */
export function requestTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}

/** The client address without the IPv4-mapped IPv6 prefix node reports. */
export function sourceIp(remoteAddress: string | undefined): string {
  return (remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, "");
}
