/**
 * Pushing to Cachix through its published API (cachix-api `Cachix.API`, the cachix client's
 * `Push` and `Push.S3` modules): the NAR is compressed (zstd), uploaded in parts to presigned
 * URLs, then `complete` creates the narinfo, signed here with the cache's signing key when one
 * is configured (otherwise Cachix signs it with the cache's managed key).
 *
 *   POST {api}/cache/{name}/multipart-nar?compression=zst            → {narId, uploadId}
 *   POST {api}/cache/{name}/multipart-nar/{narId}?uploadId&partNumber  {contentMD5} → {uploadUrl}
 *   PUT  {uploadUrl}  (Content-MD5)                                   → ETag
 *   POST {api}/cache/{name}/multipart-nar/{narId}/complete?uploadId   {parts, narInfoCreate}
 *   POST {api}/cache/{name}/multipart-nar/{narId}/abort?uploadId      (on failure)
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import * as zlib from "node:zlib";
import { z } from "zod";
import type { CachixCacheConfig } from "./binary-caches.ts";
import { cacheFetch, cacheFetchOk, describeStatus } from "./cache-http.ts";
import { CachePushError, CacheUnreachableError } from "./errors.ts";
import { dumpNar, type LocalPathInfo } from "./local-store.ts";
import type { NixRunOptions } from "./nix-process.ts";
import { narinfoFingerprint, signFingerprint } from "./signing.ts";
import { storePathBaseName, storePathHash } from "./store-path.ts";

export const CachixCreateMultipartResponse = z.object({ narId: z.string().min(1), uploadId: z.string().min(1) });
export const CachixSigningData = z.object({ contentMD5: z.string() });
export const CachixUploadPartResponse = z.object({ uploadUrl: z.string().min(1) });
export const CachixNarInfoCreate = z.object({
  cStoreHash: z.string(),
  cStoreSuffix: z.string(),
  cNarHash: z.string(),
  cNarSize: z.number().int().positive(),
  cFileHash: z.string(),
  cFileSize: z.number().int().nonnegative(),
  cReferences: z.array(z.string()),
  cDeriver: z.string(),
  cSig: z.string().nullable(),
});
export type CachixNarInfoCreate = z.infer<typeof CachixNarInfoCreate>;
export const CachixCompletedMultipartUpload = z.object({
  parts: z.array(z.object({ partNumber: z.number().int().positive(), eTag: z.string() })).nullable(),
  narInfoCreate: CachixNarInfoCreate,
});

export interface CachixPushOptions extends NixRunOptions {
  /** `https://cachix.org/api/v1/` or a stand-in's. */
  apiBase: string;
  /** Bytes per uploaded part (Cachix's client uses 32 MiB). */
  partSize?: number;
}

const DEFAULT_PART_SIZE = 32 * 1024 * 1024;

export async function cachixPushPath(cache: CachixCacheConfig, info: LocalPathInfo, options: CachixPushOptions): Promise<void> {
  const base = `${options.apiBase}cache/${encodeURIComponent(cache.name)}/multipart-nar`;
  const headers: Record<string, string> = cache.authToken ? { authorization: `Bearer ${cache.authToken}` } : {};
  const json = { ...headers, "content-type": "application/json" };
  const post = async (url: string, body?: unknown) => {
    const response = await cacheFetch(cache.name, url, { method: "POST", headers: json, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw new CachePushError(cache.name, await describeStatus(response, "POST", url));
    return response;
  };

  const created = CachixCreateMultipartResponse.safeParse(await (await post(`${base}?compression=zst`)).json().catch(() => undefined));
  if (!created.success) throw new CacheUnreachableError(cache.name, "Cachix's multipart-nar answer has no narId/uploadId");
  const { narId, uploadId } = created.data;
  const narUrl = `${base}/${encodeURIComponent(narId)}`;
  const query = `uploadId=${encodeURIComponent(uploadId)}`;

  try {
    const nar = dumpNar(info.storePath, options);
    // zlib's zstd arrived in Node 22.15.
    if (typeof zlib.createZstdCompress !== "function") throw new CachePushError(cache.name, `uploads to Cachix need zstd, which Node ${process.version} lacks: use Node 22.15 or newer`);
    const compressed = Readable.fromWeb(nar.stream as import("node:stream/web").ReadableStream).pipe(zlib.createZstdCompress());
    const fileHash = createHash("sha256");
    let fileSize = 0;
    const parts: Array<{ partNumber: number; eTag: string }> = [];
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const uploadPart = async (bytes: Buffer) => {
      const partNumber = parts.length + 1;
      const contentMD5 = createHash("md5").update(bytes).digest("base64");
      const signed = CachixUploadPartResponse.safeParse(
        await (await post(`${narUrl}?${query}&partNumber=${partNumber}`, CachixSigningData.parse({ contentMD5 }))).json().catch(() => undefined),
      );
      if (!signed.success) throw new CacheUnreachableError(cache.name, "Cachix's upload-part answer has no uploadUrl");
      const put = await cacheFetchOk(cache.name, signed.data.uploadUrl, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream", "content-md5": contentMD5 },
        body: bytes,
        timeoutMs: 300_000,
      }).catch((err: Error) => {
        throw new CachePushError(cache.name, `uploading part ${partNumber}: ${err instanceof CacheUnreachableError ? err.reason : err.message}`);
      });
      const eTag = put.headers.get("etag");
      if (eTag === null) throw new CachePushError(cache.name, `the upload of part ${partNumber} was answered without an ETag`);
      parts.push({ partNumber, eTag });
    };
    for await (const chunk of compressed as AsyncIterable<Buffer>) {
      fileHash.update(chunk);
      fileSize += chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= partSize) {
        const all = Buffer.concat(pending);
        await uploadPart(all.subarray(0, partSize));
        pending = [all.subarray(partSize)];
        pendingBytes = all.length - partSize;
      }
    }
    if (pendingBytes > 0 || parts.length === 0) await uploadPart(Buffer.concat(pending));
    const streamed = await nar.done;
    if (streamed.narHash !== info.narHash || streamed.narSize !== info.narSize) {
      throw new CachePushError(cache.name, `${info.storePath}: the NAR read from the store does not match its registered hash — run nix-store --verify --check-contents`);
    }
    const references = [...info.references].sort();
    const sig =
      cache.signingKey === undefined
        ? null
        : signFingerprint(cache.signingKey, narinfoFingerprint({ storePath: info.storePath, narHash: info.narHash, narSize: info.narSize, references }));
    const narInfoCreate = CachixNarInfoCreate.parse({
      cStoreHash: storePathHash(info.storePath),
      cStoreSuffix: storePathBaseName(info.storePath).slice(33),
      cNarHash: info.narHash,
      cNarSize: info.narSize,
      cFileHash: fileHash.digest("hex"),
      cFileSize: fileSize,
      cReferences: references.map(storePathBaseName),
      cDeriver: info.deriver === undefined ? "unknown-deriver" : storePathBaseName(info.deriver),
      // Cachix takes the bare signature; the key name is the cache's.
      cSig: sig === null ? null : sig.slice(sig.indexOf(":") + 1),
    });
    await post(`${narUrl}/complete?${query}`, CachixCompletedMultipartUpload.parse({ parts, narInfoCreate }));
  } catch (err) {
    await cacheFetch(cache.name, `${narUrl}/abort?${query}`, { method: "POST", headers }).catch(() => undefined);
    throw err instanceof CacheUnreachableError ? new CachePushError(cache.name, err.reason) : err;
  }
}
