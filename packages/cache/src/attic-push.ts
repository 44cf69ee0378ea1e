/**
 * Pushing to Attic through its published API (attic `api/v1/upload_path.rs` and its client):
 * `PUT /_api/v1/upload-path`, the NAR as the body and the path's metadata as JSON in the
 * `X-Attic-Nar-Info` header — or, when that JSON reaches 4 KiB, at the start of the body with
 * its length in `X-Attic-Nar-Info-Preamble-Size`. Attic signs on the server.
 */
import { z } from "zod";
import type { AtticCacheConfig } from "./binary-caches.ts";
import { cacheFetch, describeStatus } from "./cache-http.ts";
import { CachePushError, CacheUnreachableError } from "./errors.ts";
import { dumpNar, type LocalPathInfo } from "./local-store.ts";
import { parseSha256, sha256Hex } from "./nar-hash.ts";
import type { NixRunOptions } from "./nix-process.ts";
import { storePathBaseName, storePathHash } from "./store-path.ts";

export const ATTIC_NAR_INFO = "x-attic-nar-info";
export const ATTIC_NAR_INFO_PREAMBLE_SIZE = "x-attic-nar-info-preamble-size";
const PREAMBLE_THRESHOLD = 4 * 1024;

export const AtticUploadPathNarInfo = z.object({
  cache: z.string(),
  store_path_hash: z.string(),
  store_path: z.string(),
  /** Base names, as the Attic client sends them. */
  references: z.array(z.string()),
  system: z.string().nullable(),
  deriver: z.string().nullable(),
  sigs: z.array(z.string()),
  ca: z.string().nullable(),
  /** `sha256:<64 hex characters>`. */
  nar_hash: z.string(),
  nar_size: z.number().int().positive(),
});
export type AtticUploadPathNarInfo = z.infer<typeof AtticUploadPathNarInfo>;
export const AtticUploadPathResult = z.object({
  kind: z.string().optional(),
  file_size: z.number().nullable().optional(),
  frac_deduplicated: z.number().nullable().optional(),
});

export async function atticPushPath(cache: AtticCacheConfig, info: LocalPathInfo, options: NixRunOptions = {}): Promise<void> {
  const narInfo = AtticUploadPathNarInfo.parse({
    cache: cache.cache,
    store_path_hash: storePathHash(info.storePath),
    store_path: info.storePath,
    references: info.references.map(storePathBaseName),
    system: null,
    deriver: null,
    sigs: [],
    ca: null,
    nar_hash: `sha256:${sha256Hex(parseSha256(info.narHash))}`,
    nar_size: info.narSize,
  });
  const infoJson = JSON.stringify(narInfo);
  const nar = dumpNar(info.storePath, options);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    ...(cache.token ? { authorization: `Bearer ${cache.token}` } : {}),
  };
  let body: ReadableStream<Uint8Array> = nar.stream;
  if (Buffer.byteLength(infoJson) >= PREAMBLE_THRESHOLD) {
    const preamble = new TextEncoder().encode(infoJson);
    headers[ATTIC_NAR_INFO_PREAMBLE_SIZE] = String(preamble.length);
    body = prepend(preamble, nar.stream);
  } else {
    headers[ATTIC_NAR_INFO] = infoJson;
  }
  const url = `${cache.endpoint}_api/v1/upload-path`;
  let response: Response;
  try {
    response = await cacheFetch(cache.name, url, { method: "PUT", headers, body, timeoutMs: 600_000 });
  } catch (err) {
    throw err instanceof CacheUnreachableError ? new CachePushError(cache.name, err.reason) : err;
  }
  if (!response.ok) throw new CachePushError(cache.name, await describeStatus(response, "PUT", url));
  await response.arrayBuffer();
  const streamed = await nar.done;
  if (streamed.narHash !== info.narHash) {
    throw new CachePushError(cache.name, `${info.storePath}: the NAR read from the store does not match its registered hash — run nix-store --verify --check-contents`);
  }
}

function prepend(first: Uint8Array, rest: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = rest.getReader();
  let sentFirst = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentFirst) {
        sentFirst = true;
        controller.enqueue(first);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
