/**
 * Who may read or write the built-in cache (docs/cache.md). Nix sends credentials from a netrc
 * as HTTP Basic: a cache token as the password (any login), or an agent's session id as the
 * login with the read key derived from its session (`sessionCacheKey`). A cache token opens the
 * cache and nothing else; an agent's access ends with its session.
 */
import { randomBytes } from "node:crypto";
import { sessionCacheKey } from "@nimbus/cache";
import type { CacheAccess } from "@nimbus/protocol";
import { hashMatches, hashSecret, secretsEqual } from "../platform/token-secret.ts";
import type { CacheTokenItem } from "../storage/cache-items.ts";
import { getCacheToken } from "../storage/cache-tokens.ts";
import { getSessionLoad } from "../storage/sessions.ts";

const TOKEN_PREFIX = "nimbuscache1";
const CACHE_TOKEN = /^nimbuscache1\.([0-9a-f]{20})\.([A-Za-z0-9_-]{43})$/;
const SESSION_ID = /^[0-9a-f]{32}$/;

export type CacheCaller =
  | { ok: true; access: CacheAccess; who: string }
  | { ok: false; status: 401 | 403; reason: string };

export function newCacheToken(): { id: string; secret: string; token: string } {
  const id = randomBytes(10).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { id, secret, token: `${TOKEN_PREFIX}.${id}.${secret}` };
}

/** `Authorization: Basic …` (what Nix sends from a netrc) or `Bearer <cache token>` → login and password. */
export function credentialsOf(headers: Record<string, string | undefined> | undefined): { login: string; password: string } | undefined {
  const value = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === "authorization")?.[1];
  if (!value) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(value);
  if (bearer) return { login: "", password: bearer[1]! };
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value);
  if (!basic) return undefined;
  const text = Buffer.from(basic[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  return colon === -1 ? undefined : { login: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Reads only: a refused credential leaves no trace. */
export async function cacheCaller(headers: Record<string, string | undefined> | undefined, now = new Date()): Promise<CacheCaller> {
  const credentials = credentialsOf(headers);
  if (!credentials) return { ok: false, status: 401, reason: "the built-in cache needs a credential: a cache token in a netrc file (`nimbus cache info` shows how)" };
  const token = CACHE_TOKEN.exec(credentials.password.trim());
  if (token) {
    const item = await getCacheToken(token[1]!);
    const problem = tokenProblem(item, token[2]!, now);
    if (problem) return { ok: false, status: 401, reason: problem };
    return { ok: true, access: item!.access, who: `token ${item!.tokenId}` };
  }
  if (SESSION_ID.test(credentials.login)) {
    const session = await getSessionLoad(credentials.login);
    if (session && secretsEqual(sessionCacheKey(session.secretHash), credentials.password)) {
      return { ok: true, access: "read", who: `session ${session.sessionId}` };
    }
    return { ok: false, status: 401, reason: "unknown or ended agent session" };
  }
  return { ok: false, status: 401, reason: "not a cache token (create one with `nimbus cache token create --read`)" };
}

function tokenProblem(item: CacheTokenItem | undefined, secret: string, now: Date): string | undefined {
  if (!item || !hashMatches(secret, item.secretHash)) return "unknown cache token";
  if (item.revokedAt) return "cache token revoked";
  if (item.expiresAt && item.expiresAt <= now.toISOString()) return `cache token expired at ${item.expiresAt}`;
  return undefined;
}

export const cacheTokenItem = (input: { id: string; secret: string; name: string; access: CacheAccess; now: Date; expiresInSeconds?: number }): CacheTokenItem => ({
  tokenId: input.id,
  secretHash: hashSecret(input.secret),
  name: input.name,
  access: input.access,
  createdAt: input.now.toISOString(),
  ...(input.expiresInSeconds ? { expiresAt: new Date(input.now.getTime() + input.expiresInSeconds * 1000).toISOString() } : {}),
});
