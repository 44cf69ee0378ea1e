/** The built-in cache in the JSON API (docs/cache.md): `GET /api/cache` and its tokens. */
import type { CacheInfoView, CacheTokenView, CreateCacheTokenRequest, CreateCacheTokenResponse } from "@nimbus/protocol";
import { cacheSettings } from "../platform/cache-settings.ts";
import { notFound } from "../platform/errors.ts";
import { httpApiUrl, secretValue } from "../platform/linked-resources.ts";
import type { CacheTokenItem } from "../storage/cache-items.ts";
import { cacheStats } from "../storage/cache-index.ts";
import { listCacheTokens, putCacheToken, revokeCacheToken } from "../storage/cache-tokens.ts";
import { cacheTokenItem, newCacheToken } from "../flow/cache-access.ts";

/** The cache's URL: the HTTP API's, plus `/cache`. */
export const builtinCacheUrl = (): string => `${httpApiUrl().replace(/\/+$/, "")}/cache`;

export async function cacheInfo(): Promise<CacheInfoView> {
  const stats = await cacheStats();
  return {
    url: builtinCacheUrl(),
    publicKey: secretValue("CachePublicKey"),
    pathCount: Math.max(0, stats.pathCount),
    fileBytes: Math.max(0, stats.fileBytes),
    narBytes: Math.max(0, stats.narBytes),
    retentionDays: cacheSettings().retentionMs / (24 * 3600 * 1000),
    ...(stats.lastCollection ? { lastCollection: stats.lastCollection } : {}),
  };
}

const view = ({ tokenId, name, access, createdAt, expiresAt, revokedAt }: CacheTokenItem): CacheTokenView => ({
  id: tokenId,
  name,
  access,
  createdAt,
  ...(expiresAt ? { expiresAt } : {}),
  ...(revokedAt ? { revokedAt } : {}),
});

export async function createCacheToken(request: CreateCacheTokenRequest, now = new Date()): Promise<CreateCacheTokenResponse> {
  const { id, secret, token } = newCacheToken();
  const item = cacheTokenItem({ id, secret, name: request.name ?? `cache-${request.access}-${id.slice(0, 6)}`, access: request.access, now, expiresInSeconds: request.expiresInSeconds });
  if (!(await putCacheToken(item))) throw new Error(`cache token id ${id} exists already`);
  return { ...view(item), token };
}

export async function listCacheTokenViews(): Promise<CacheTokenView[]> {
  return (await listCacheTokens()).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map(view);
}

export async function revokeCacheTokenById(id: string, now = new Date()): Promise<CacheTokenView> {
  const revoked = await revokeCacheToken(id, now);
  if (!revoked) throw notFound(`no cache token with id ${id} — list them with \`nimbus cache token list\``);
  return view(revoked);
}
