import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Cluster join tokens look like `nimbus1.<id>.<secret>`: the id finds the stored item, the
 * secret is only ever stored as its SHA-256, compared in constant time.
 */
const PREFIX = "nimbus1";
const TOKEN_PATTERN = /^nimbus1\.([0-9a-f]{20})\.([A-Za-z0-9_-]{43})$/;

export interface ParsedToken {
  id: string;
  secret: string;
}

export function generateToken(): ParsedToken & { token: string } {
  const id = randomBytes(10).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { id, secret, token: `${PREFIX}.${id}.${secret}` };
}

/** `undefined` for anything not shaped like a token, so callers refuse it like an unknown one. */
export function parseToken(token: string): ParsedToken | undefined {
  const match = TOKEN_PATTERN.exec(token.trim());
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export const hashSecret = (secret: string): string => createHash("sha256").update(secret).digest("hex");

/** Constant-time comparison of two secrets of any length (both are hashed first). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

export function hashMatches(secret: string, storedHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), "hex");
  const expected = Buffer.from(storedHash, "hex");
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** `Authorization: Bearer <token>` → the token, or undefined. Header names are case-insensitive. */
export function bearerToken(headers: Record<string, string | undefined> | undefined): string | undefined {
  if (!headers) return undefined;
  const entry = Object.entries(headers).find(([name]) => name.toLowerCase() === "authorization");
  const match = entry?.[1] ? /^Bearer\s+(\S+)\s*$/i.exec(entry[1]) : null;
  return match?.[1];
}
