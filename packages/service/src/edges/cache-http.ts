/**
 * The built-in cache over HTTP (docs/cache.md): Nix's binary cache protocol — `nix-cache-info`,
 * `<hash>.narinfo` (answered from the index, signed by the service), `nar/<file>` (a redirect to
 * a presigned S3 URL: NAR files never pass through a handler on the way out) — with the PUTs of
 * `nix copy --to` for write tokens, and `POST /cache/missing`, the bulk query.
 */
import { createHash } from "node:crypto";
import { CACHE_MISSING_MAX_PATHS, CacheMissingRequest, isStorePathHash, NarinfoError, parseNarFileKey, parseNarinfo, parseSha256, sha256NixBase32 } from "@nimbus/cache";
import type { CacheAccess } from "@nimbus/protocol";
import { cacheSettings, MAX_PUT_NAR_BYTES } from "../platform/cache-settings.ts";
import { NimbusError } from "../platform/errors.ts";
import { getCachePath } from "../storage/cache-index.ts";
import { headObject, presignDownload, putObject } from "../storage/cache-objects.ts";
import { cacheCaller } from "../flow/cache-access.ts";
import { narinfoText } from "../flow/cache-narinfo.ts";
import { missingPaths, touchStale } from "../flow/cache-presence.ts";
import { publishPath } from "../flow/cache-publish.ts";
import { type HttpEvent, type HttpResult, json, parseBody } from "./http.ts";

const text = (statusCode: number, body: string, contentType = "text/plain; charset=utf-8"): HttpResult => ({
  statusCode,
  headers: { "content-type": contentType },
  body,
});

/** Wraps a cache handler: a typed error becomes its status with a line of text Nix shows; anything else a 500. */
export function cacheHandler(fn: (event: HttpEvent) => Promise<HttpResult>): (event: HttpEvent) => Promise<HttpResult> {
  return async (event) => {
    try {
      return await fn(event);
    } catch (error) {
      if (error instanceof NimbusError) {
        const result = text(error.status, `${error.message}\n`);
        if (error.status === 401) result.headers = { ...result.headers, "www-authenticate": 'Basic realm="nimbus cache"' };
        return result;
      }
      console.error(`${event.routeKey} failed:`, error);
      return text(500, "internal error — see the service logs\n");
    }
  };
}

/** Checks the caller may do `need`; throws 401/403 otherwise. */
async function requireAccess(event: HttpEvent, need: CacheAccess): Promise<void> {
  const caller = await cacheCaller(event.headers);
  if (!caller.ok) throw new NimbusError("unauthorized", caller.reason, caller.status);
  if (need === "write" && caller.access !== "write") throw new NimbusError("forbidden", `${caller.who} may only read the built-in cache`, 403);
}

export const NIX_CACHE_INFO = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n";

export async function serveNixCacheInfo(): Promise<HttpResult> {
  return text(200, NIX_CACHE_INFO, "text/x-nix-cache-info");
}

const method = (event: HttpEvent) => event.requestContext.http.method.toUpperCase();
const bodyBytes = (event: HttpEvent) => (event.body ? Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8") : Buffer.alloc(0));

/** `/cache/<hash>.narinfo`: GET and HEAD read it, PUT (a write token, `nix copy --to`) publishes one. */
export async function serveNarinfo(event: HttpEvent): Promise<HttpResult> {
  const file = event.pathParameters?.file ?? "";
  const hash = file.endsWith(".narinfo") ? file.slice(0, -".narinfo".length) : "";
  const verb = method(event);
  if (!isStorePathHash(hash)) throw new NimbusError("not-found", `no such file in the cache: ${file.slice(0, 100)}`, 404);
  if (verb === "PUT") {
    await requireAccess(event, "write");
    return publishNarinfo(bodyBytes(event).toString("utf8"), hash);
  }
  if (verb !== "GET" && verb !== "HEAD") throw new NimbusError("method", `${verb} is not supported here`, 405);
  await requireAccess(event, "read");
  const item = await getCachePath(hash);
  if (!item) throw new NimbusError("not-found", `${hash} is not in the cache`, 404);
  await touchStale([item], new Date());
  return text(200, narinfoText(item), "text/x-nix-narinfo");
}

async function publishNarinfo(body: string, hash: string): Promise<HttpResult> {
  let info;
  try {
    info = parseNarinfo(body);
  } catch (error) {
    if (error instanceof NarinfoError) throw new NimbusError("bad-request", error.message, 400);
    throw error;
  }
  if (!info.storePath.includes(`/${hash}-`)) throw new NimbusError("bad-request", `the narinfo is for ${info.storePath}, not ${hash}`, 400);
  const named = parseNarFileKey(info.url);
  if (!named || info.fileHash === undefined || info.fileSize === undefined) {
    throw new NimbusError("bad-request", "the narinfo must name its file as nar/<FileHash>.nar[.xz|.zst|…] and give FileHash and FileSize", 400);
  }
  if (named.fileHash !== sha256NixBase32(parseSha256(info.fileHash)) || named.compression !== info.compression) {
    throw new NimbusError("bad-request", `URL ${info.url} does not match FileHash and Compression`, 400);
  }
  const verdict = await publishPath({
    storePath: info.storePath,
    fileHash: named.fileHash,
    fileSize: info.fileSize,
    compression: info.compression as never,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references,
    ...(info.deriver ? { deriver: info.deriver } : {}),
    ...(info.ca ? { ca: info.ca } : {}),
  });
  if (verdict.status === "refused") throw new NimbusError("bad-request", `refused: ${verdict.reason}`, 400);
  return text(200, `${verdict.status}\n`);
}

/** `/cache/nar/<file>`: GET redirects to a presigned S3 URL, HEAD says whether it is there, PUT (a write token) stores it. */
export async function serveNar(event: HttpEvent): Promise<HttpResult> {
  const key = `nar/${event.pathParameters?.file ?? ""}`;
  const named = parseNarFileKey(key);
  if (!named) throw new NimbusError("not-found", `no such file in the cache: ${key.slice(0, 100)}`, 404);
  const verb = method(event);
  if (verb === "PUT") {
    await requireAccess(event, "write");
    const body = bodyBytes(event);
    if (body.length > MAX_PUT_NAR_BYTES) {
      throw new NimbusError("too-large", `NAR files sent through the API are limited to ${MAX_PUT_NAR_BYTES} bytes (docs/cache.md)`, 413);
    }
    const digest = createHash("sha256").update(body).digest();
    if (sha256NixBase32(digest) !== named.fileHash) throw new NimbusError("bad-request", `the body's SHA-256 is not the one ${key} is named for`, 400);
    await putObject(key, body, digest.toString("base64"), "application/x-nix-nar");
    return text(200, "stored\n");
  }
  if (verb === "HEAD") {
    await requireAccess(event, "read");
    const head = await headObject(key);
    return head ? text(200, "") : text(404, "");
  }
  if (verb !== "GET") throw new NimbusError("method", `${verb} is not supported here`, 405);
  await requireAccess(event, "read");
  const url = await presignDownload(key, cacheSettings().urlLifetimeSeconds);
  return { statusCode: 302, headers: { location: url, "cache-control": "no-store" }, body: "" };
}

/** `POST /cache/missing`: `{storePaths}` → `{missing}`, up to thousands of paths in one request. */
export async function serveMissing(event: HttpEvent): Promise<HttpResult> {
  await requireAccess(event, "read");
  const body = parseBody(event, CacheMissingRequest);
  if (body.storePaths.length > CACHE_MISSING_MAX_PATHS) throw new NimbusError("bad-request", `at most ${CACHE_MISSING_MAX_PATHS} paths per request`, 400);
  return json(200, { missing: await missingPaths(body.storePaths) });
}
