/**
 * A stand-in for Cachix, following its published API (cachix-api's `Cachix.API` servant
 * routes and the cachix client's push code), because cachix.org cannot be reached from the
 * tests. All state lives in the test process. It implements only what Nimbus uses:
 *
 *   GET|HEAD /api/v1/cache/{name}/nix-cache-info, /{hash}.narinfo, /nar/{file}  (reads: a plain Nix cache)
 *   POST /api/v1/cache/{name}/narinfo                         bulk: [hash] → [missing hash]
 *   POST /api/v1/cache/{name}/multipart-nar?compression=zst   → {narId, uploadId}
 *   POST /api/v1/cache/{name}/multipart-nar/{narId}?uploadId&partNumber  {contentMD5} → {uploadUrl}
 *   PUT  {uploadUrl}                                          (a presigned URL on this server) → ETag
 *   POST /api/v1/cache/{name}/multipart-nar/{narId}/complete?uploadId  {parts, narInfoCreate}
 *   POST /api/v1/cache/{name}/multipart-nar/{narId}/abort?uploadId
 *
 * Writes need `Authorization: Bearer <token>`; a private cache needs a token for reads too
 * (Bearer, or Basic with the token as password as Nix sends it from a netrc file). Like
 * Cachix, it checks each part's Content-MD5, the file hash and size, and the NAR hash and
 * size; it signs with the cache's managed key when the client sends no signature.
 */
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { zstdDecompressSync } from "node:zlib";
import {
  CachixCompletedMultipartUpload,
  formatNarinfo,
  type Narinfo,
  narinfoFingerprint,
  type SecretKey,
  sha256NixBase32,
  signFingerprint,
} from "@nimbus/cache";
import { type InMemoryCache, newInMemoryCache, readBody, sendJson, serveCacheFile } from "./in-memory-cache.ts";

export interface CachixStandinCache extends InMemoryCache {
  /** The token that may write (and read, when private). */
  token: string;
  private: boolean;
  /** Cachix's managed signing key, used when an upload carries no signature. */
  managedKey?: SecretKey;
}

interface Upload {
  cache: string;
  uploadId: string;
  parts: Map<number, { bytes: Buffer; eTag: string }>;
}

export interface CachixStandin {
  /** The API origin (what `CacheServices.cachixApiUrl` takes). */
  url: string;
  /** Where a cache is read as a Nix binary cache (what `CacheServices.cachixCacheUrl` returns). */
  cacheUrl(name: string): string;
  caches: Map<string, CachixStandinCache>;
  /** Requests by route name: "bulk", "create", "part", "put", "complete", "abort", "read". */
  counts: Map<string, number>;
  /** Make the next `complete` calls fail with this status and message. */
  failComplete?: { status: number; message: string };
  close(): Promise<void>;
}

export async function startCachixStandin(
  caches: Record<string, Omit<CachixStandinCache, keyof InMemoryCache>>,
  options: { latencyMs?: number } = {},
): Promise<CachixStandin> {
  const state = new Map<string, CachixStandinCache>(Object.entries(caches).map(([name, c]) => [name, { ...c, ...newInMemoryCache() }]));
  const uploads = new Map<string, Upload>();
  const counts = new Map<string, number>();
  const count = (route: string) => counts.set(route, (counts.get(route) ?? 0) + 1);
  const presignKey = randomBytes(32);
  const presign = (narId: string, part: number, uploadId: string) => createHmac("sha256", presignKey).update(`${narId}/${part}/${uploadId}`).digest("hex");
  let origin = "";

  const tokenOf = (req: IncomingMessage): string | undefined => {
    const auth = req.headers.authorization ?? "";
    if (auth.startsWith("Bearer ")) return auth.slice(7);
    if (auth.startsWith("Basic ")) {
      const decoded = Buffer.from(auth.slice(6), "base64").toString();
      return decoded.slice(decoded.indexOf(":") + 1);
    }
    return undefined;
  };
  const error = (res: ServerResponse, status: number, message: string) => sendJson(res, status, { error: message });

  const handle = async (req: IncomingMessage, res: ServerResponse, standin: CachixStandin) => {
    if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
    const url = new URL(req.url ?? "/", origin);
    const presigned = /^\/presigned\/([^/]+)\/(\d+)$/.exec(url.pathname);
    if (presigned && req.method === "PUT") {
      count("put");
      const [, narId, partText] = presigned;
      const part = Number(partText);
      const upload = uploads.get(narId!);
      const body = await readBody(req);
      if (!upload || url.searchParams.get("signature") !== presign(narId!, part, upload.uploadId)) return error(res, 403, "SignatureDoesNotMatch");
      const md5 = createHash("md5").update(body).digest("base64");
      if (req.headers["content-md5"] !== md5) return error(res, 400, "BadDigest: Content-MD5 does not match the body");
      const eTag = `"${createHash("md5").update(body).digest("hex")}"`;
      upload.parts.set(part, { bytes: body, eTag });
      res.writeHead(200, { etag: eTag }).end();
      return;
    }
    const match = /^\/api\/v1\/cache\/([^/]+)\/(.*)$/.exec(url.pathname);
    const cache = match ? state.get(match[1]!) : undefined;
    if (!match || !cache) return error(res, 404, "no such cache");
    const name = match[1]!;
    const sub = match[2]!;
    const authorized = tokenOf(req) === cache.token;
    if (req.method === "GET" || req.method === "HEAD") {
      count("read");
      if (cache.private && !authorized) return error(res, 401, "this cache is private");
      if (serveCacheFile(cache, sub, req, res)) return;
      return error(res, 404, "not found");
    }
    if (req.method !== "POST") return error(res, 405, "method not allowed");
    if (sub === "narinfo") {
      count("bulk");
      if (cache.private && !authorized) return error(res, 401, "this cache is private");
      const hashes = JSON.parse((await readBody(req)).toString()) as string[];
      return sendJson(res, 200, hashes.filter((h) => !cache.narinfos.has(h)));
    }
    if (!authorized) {
      await readBody(req);
      return error(res, 401, "a write token is required");
    }
    if (sub === "multipart-nar") {
      count("create");
      if (url.searchParams.get("compression") !== "zst" && url.searchParams.get("compression") !== "xz") return error(res, 400, "Wrong compression method");
      const narId = randomUUID();
      const uploadId = randomBytes(12).toString("hex");
      uploads.set(narId, { cache: name, uploadId, parts: new Map() });
      return sendJson(res, 200, { narId, uploadId });
    }
    const multipart = /^multipart-nar\/([^/]+)(?:\/(complete|abort))?$/.exec(sub);
    const upload = multipart ? uploads.get(multipart[1]!) : undefined;
    if (!multipart || !upload || upload.cache !== name || url.searchParams.get("uploadId") !== upload.uploadId) return error(res, 404, "no such upload");
    const narId = multipart[1]!;
    const body = await readBody(req);
    if (multipart[2] === undefined) {
      count("part");
      const part = Number(url.searchParams.get("partNumber"));
      if (!Number.isInteger(part) || part < 1 || part > 10_000) return error(res, 400, "partNumber must be 1..10000");
      const { contentMD5 } = JSON.parse(body.toString()) as { contentMD5?: string };
      if (typeof contentMD5 !== "string") return error(res, 400, "contentMD5 is required");
      return sendJson(res, 200, { uploadUrl: `${origin}/presigned/${narId}/${part}?uploadId=${upload.uploadId}&signature=${presign(narId, part, upload.uploadId)}` });
    }
    if (multipart[2] === "abort") {
      count("abort");
      uploads.delete(narId);
      return sendJson(res, 200, []);
    }
    count("complete");
    if (standin.failComplete) return error(res, standin.failComplete.status, standin.failComplete.message);
    const parsed = CachixCompletedMultipartUpload.safeParse(JSON.parse(body.toString()));
    if (!parsed.success) return error(res, 400, `bad request body: ${parsed.error.message}`);
    const { parts, narInfoCreate: nic } = parsed.data;
    const ordered = [...(parts ?? [])].sort((a, b) => a.partNumber - b.partNumber);
    for (const p of ordered) if (upload.parts.get(p.partNumber)?.eTag !== p.eTag) return error(res, 400, `part ${p.partNumber}: ETag mismatch`);
    const file = Buffer.concat(ordered.map((p) => upload.parts.get(p.partNumber)!.bytes));
    const fileHash = createHash("sha256").update(file).digest("hex");
    if (fileHash !== nic.cFileHash || file.length !== nic.cFileSize) return error(res, 400, "FileHash or FileSize does not match the upload");
    const nar = zstdDecompressSync(file);
    const narHash = sha256NixBase32(createHash("sha256").update(nar).digest());
    if (narHash !== nic.cNarHash || nar.length !== nic.cNarSize) return error(res, 400, "NarHash or NarSize does not match the NAR");
    const storePath = `/nix/store/${nic.cStoreHash}-${nic.cStoreSuffix}`;
    const references = nic.cReferences.map((r) => `/nix/store/${r}`);
    let sig: string;
    if (nic.cSig !== null) sig = `${name}.cachix.org-1:${nic.cSig}`;
    else if (cache.managedKey) sig = signFingerprint(cache.managedKey, narinfoFingerprint({ storePath, narHash, narSize: nar.length, references }));
    else return error(res, 400, "this cache has no managed signing key: sign the narinfo");
    const fileName = `${fileHash}.nar.zst`;
    const info: Narinfo = {
      storePath,
      url: `nar/${fileName}`,
      compression: "zstd",
      fileHash: sha256NixBase32(Buffer.from(fileHash, "hex")),
      fileSize: file.length,
      narHash,
      narSize: nar.length,
      references,
      deriver: nic.cDeriver === "unknown-deriver" ? undefined : `/nix/store/${nic.cDeriver}`,
      sigs: [sig],
    };
    cache.nars.set(fileName, file);
    cache.narinfos.set(nic.cStoreHash, formatNarinfo(info));
    uploads.delete(narId);
    return sendJson(res, 200, []);
  };

  const standin: CachixStandin = {
    url: "",
    cacheUrl: (name) => `${origin}/api/v1/cache/${name}`,
    caches: state,
    counts,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server = createServer((req, res) => {
    handle(req, res, standin).catch((err: Error) => {
      if (!res.headersSent) sendJson(res, 500, { error: err.message });
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  standin.url = origin;
  return standin;
}
