/**
 * Uploads to Nimbus's built-in cache (docs/cache.md): each NAR is compressed with zstd into a
 * private temporary file (its size and SHA-256 must be known before the service signs a URL for
 * exactly those bytes), uploaded straight to the bucket with the URL and headers the service
 * handed out over the agent's socket, then completed: the service checks the file and publishes
 * the path, signed with its own key. Paths go in rounds, each after the paths it refers to were
 * published (the service refuses a path whose references it lacks). A build's last completion
 * may be left to its result (`publishLater`): the service publishes it before it settles the build.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import {
  CACHE_COMPLETE_BATCH,
  CACHE_PUBLISH_WITH_RESULT,
  CACHE_UPLOAD_BATCH,
  type UploadedPath,
  type UploadFile,
  type UploadSlot,
  type UploadVerdict,
} from "@nimbus/protocol";
import { redact } from "./cache-http.ts";
import { chunk, mapConcurrently } from "./concurrency.ts";
import { CachePushError } from "./errors.ts";
import { dumpNar, type LocalPathInfo } from "./local-store.ts";
import { sha256NixBase32 } from "./nar-hash.ts";
import type { NixRunOptions } from "./nix-process.ts";

/** How the agent asks the service (over its socket): signed upload URLs, then the check and publication. */
export interface BuiltinUploadChannel {
  requestUploads(files: UploadFile[], signal?: AbortSignal): Promise<UploadSlot[]>;
  complete(paths: UploadedPath[], signal?: AbortSignal): Promise<UploadVerdict[]>;
}

export interface BuiltinUploadOptions extends NixRunOptions {
  /** Where compressed NARs wait for their upload (removed afterwards). */
  tempDir: string;
  /** Paths compressed and uploaded, and batches asked for, at once (default 4). */
  concurrency?: number;
  /** For messages: the cache's name ("nimbus"). */
  cache?: string;
  /** Leave the last completion, when small, to the caller: it goes with a build's result (`unpublished`). */
  publishLater?: boolean;
}

interface Prepared {
  info: LocalPathInfo;
  /** The compressed NAR: in a temporary file, or in memory when small. */
  file: string | undefined;
  bytes?: Buffer;
  fileHash: string;
  fileSize: number;
}

/** NARs up to this size are compressed in memory in one call: no stream, no temporary file (most outputs of small builds). */
export const IN_MEMORY_NAR_BYTES = 256 * 1024;

/** Bytes of NAR files one completion asks the service to read back at most (it reads small ones whole). */
const COMPLETE_BYTES = 64 * 1024 * 1024;

/** Bytes of claims a build's result may carry to publish: the rest of its frame holds its outputs and cache reports. */
const PUBLISH_WITH_RESULT_BYTES = 12 * 1024;

/** How many paths went up, and how many the cache said it had already. */
export interface BuiltinUploadCounts {
  uploaded: number;
  alreadyPresent: number;
  /** With `publishLater`: uploaded paths (counted in `uploaded`) that are not published yet — their claims, for the build's result. */
  unpublished?: UploadedPath[];
}

/** The error for the first path refused, if any: the same words whether the agent completed it or its build's result carried it. */
export function refusedPublication(cache: string, verdicts: readonly UploadVerdict[]): CachePushError | undefined {
  const refused = verdicts.find((v) => v.status === "refused");
  return refused?.status === "refused" ? new CachePushError(cache, `${refused.storePath} was refused: ${refused.reason}`) : undefined;
}

/** Completes uploaded paths (their claims) in one request; throws CachePushError naming the first refused. */
export async function completeUploads(channel: BuiltinUploadChannel, claims: UploadedPath[], cache: string, signal?: AbortSignal): Promise<BuiltinUploadCounts> {
  const verdicts = await channel.complete(claims, signal);
  const refused = refusedPublication(cache, verdicts);
  if (refused) throw refused;
  if (verdicts.length !== claims.length) throw new CachePushError(cache, "the service did not answer for every uploaded path");
  const alreadyPresent = verdicts.filter((v) => v.status === "present").length;
  return { uploaded: verdicts.length - alreadyPresent, alreadyPresent };
}

/**
 * Uploads `paths` (with their registration info); throws CachePushError naming the first path
 * refused. Batches of a round go at once (`concurrency` of them), each compressed, asked for
 * and put on its own, so round trips to the service overlap.
 */
export async function uploadToBuiltinCache(
  paths: readonly string[],
  infos: ReadonlyMap<string, LocalPathInfo>,
  channel: BuiltinUploadChannel,
  options: BuiltinUploadOptions,
): Promise<BuiltinUploadCounts> {
  const cache = options.cache ?? "nimbus";
  if (typeof zlib.createZstdCompress !== "function") {
    throw new CachePushError(cache, `uploads to the built-in cache need zstd, which Node ${process.version} lacks: use Node 22.15 or newer`);
  }
  const concurrency = options.concurrency ?? 4;
  const counts: BuiltinUploadCounts = { uploaded: 0, alreadyPresent: 0 };
  const directory = path.join(options.tempDir, `upload-${randomUUID()}`);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  try {
    const all = rounds(paths, infos);
    for (const [index, round] of all.entries()) {
      const uploaded: Prepared[] = [];
      await mapConcurrently(chunk(round, CACHE_UPLOAD_BATCH), concurrency, async (batch) => {
        const prepared = await mapConcurrently(batch, Math.max(1, Math.floor(concurrency / 2)), (p) => compress(infos.get(p)!, directory, cache, options));
        const slots = await channel.requestUploads(prepared.map(uploadFile), options.signal);
        await mapConcurrently(prepared, concurrency, async (item) => {
          const slot = slots.find((s) => s.storePath === item.info.storePath);
          if (slot === undefined) throw new CachePushError(cache, `the service gave no upload URL for ${item.info.storePath}`);
          if (slot.status === "refused") throw new CachePushError(cache, `${item.info.storePath}: ${slot.reason}`);
          if (slot.status === "upload") {
            await put(cache, item, slot.url, slot.headers, options.signal);
            uploaded.push(item);
          } else {
            counts.alreadyPresent++;
            await discard(item);
          }
        });
      });
      const batches = completionBatches(uploaded);
      // The last round's last batch, when small, goes with the build's result: one request to the service fewer.
      const later = options.publishLater && index === all.length - 1 ? withResult(batches.at(-1)) : undefined;
      if (later) {
        batches.pop();
        counts.unpublished = later;
        counts.uploaded += later.length;
      }
      await mapConcurrently(batches, concurrency, async (batch) => {
        const done = await completeUploads(channel, batch.map(uploadedPath), cache, options.signal);
        counts.uploaded += done.uploaded;
        counts.alreadyPresent += done.alreadyPresent;
      });
      await Promise.all(uploaded.map(discard));
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  return counts;
}

/** Paths in rounds: each path in a later round than every path it refers to (among those given). */
export function rounds(paths: readonly string[], infos: ReadonlyMap<string, Pick<LocalPathInfo, "references">>): string[][] {
  const wanted = new Set(paths);
  const depth = new Map<string, number>();
  const depthOf = (start: string): number => {
    const stack = [start];
    while (stack.length > 0) {
      const p = stack.at(-1)!;
      if (depth.has(p)) {
        stack.pop();
        continue;
      }
      const refs = (infos.get(p)?.references ?? []).filter((r) => r !== p && wanted.has(r));
      const pending = refs.filter((r) => !depth.has(r));
      if (pending.length > 0 && !pending.some((r) => stack.includes(r))) {
        stack.push(...pending);
        continue;
      }
      depth.set(p, Math.max(-1, ...refs.map((r) => depth.get(r) ?? -1)) + 1);
      stack.pop();
    }
    return depth.get(start)!;
  };
  const result: string[][] = [];
  for (const p of paths) (result[depthOf(p)] ??= []).push(p);
  return result.filter((r) => r !== undefined);
}

const narMismatch = (cache: string, info: LocalPathInfo) =>
  new CachePushError(cache, `${info.storePath}: the NAR read from the store does not match its registered hash — run nix-store --verify --check-contents`);

const discard = (p: Prepared) => (p.file === undefined ? Promise.resolve() : rm(p.file, { force: true }));

async function compress(info: LocalPathInfo, directory: string, cache: string, options: NixRunOptions): Promise<Prepared> {
  if (info.narSize <= IN_MEMORY_NAR_BYTES) return compressInMemory(info, cache, options);
  const file = path.join(directory, `${path.basename(info.storePath)}.nar.zst`);
  const nar = dumpNar(info.storePath, options);
  const hash = createHash("sha256");
  let fileSize = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      fileSize += chunk.length;
      done(null, chunk);
    },
  });
  // The registered size, pledged: zstd sizes its window to the NAR instead of setting up a large one (about 4 ms of CPU,
  // most of a small output's push), and refuses a NAR of any other size — the mismatch checked below.
  const zstd = zlib.createZstdCompress({ pledgedSrcSize: info.narSize });
  try {
    await pipeline(Readable.fromWeb(nar.stream as import("node:stream/web").ReadableStream), zstd, count, createWriteStream(file, { mode: 0o600 }));
  } catch (err) {
    if ((err as { code?: unknown }).code === "ZSTD_error_srcSize_wrong") throw narMismatch(cache, info);
    throw err;
  }
  const streamed = await nar.done;
  if (streamed.narHash !== info.narHash || streamed.narSize !== info.narSize) throw narMismatch(cache, info);
  return { info, file, fileHash: sha256NixBase32(hash.digest()), fileSize };
}

async function compressInMemory(info: LocalPathInfo, cache: string, options: NixRunOptions): Promise<Prepared> {
  const nar = dumpNar(info.storePath, options);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of nar.stream) {
    size += chunk.length;
    // A path grown since Nix registered it is not read whole into memory.
    if (size > info.narSize) throw narMismatch(cache, info);
    chunks.push(chunk);
  }
  const streamed = await nar.done;
  if (streamed.narHash !== info.narHash || streamed.narSize !== info.narSize) throw narMismatch(cache, info);
  const bytes = zlib.zstdCompressSync(Buffer.concat(chunks), { pledgedSrcSize: info.narSize });
  return { info, file: undefined, bytes, fileHash: sha256NixBase32(createHash("sha256").update(bytes).digest()), fileSize: bytes.length };
}

const uploadFile = (p: Prepared): UploadFile => ({ storePath: p.info.storePath, fileHash: p.fileHash, fileSize: p.fileSize, compression: "zstd" });

const uploadedPath = (p: Prepared): UploadedPath => ({
  ...uploadFile(p),
  narHash: p.info.narHash,
  narSize: p.info.narSize,
  references: [...p.info.references].sort(),
  ...(p.info.deriver === undefined ? {} : { deriver: p.info.deriver }),
});

/** A completion's claims, if they may travel with a build's result instead. */
function withResult(batch: Prepared[] | undefined): UploadedPath[] | undefined {
  const claims = batch?.map(uploadedPath);
  if (!claims || claims.length === 0 || claims.length > CACHE_PUBLISH_WITH_RESULT) return undefined;
  return Buffer.byteLength(JSON.stringify(claims)) <= PUBLISH_WITH_RESULT_BYTES ? claims : undefined;
}

function completionBatches(items: readonly Prepared[]): Prepared[][] {
  const batches: Prepared[][] = [];
  let current: Prepared[] = [];
  let bytes = 0;
  let frame = 0;
  for (const item of items) {
    const size = Buffer.byteLength(JSON.stringify(uploadedPath(item)));
    if (current.length > 0 && (current.length >= CACHE_COMPLETE_BATCH || bytes + item.fileSize > COMPLETE_BYTES || frame + size > 28 * 1024)) {
      batches.push(current);
      current = [];
      bytes = 0;
      frame = 0;
    }
    if (size > 28 * 1024) throw new CachePushError("nimbus", `${item.info.storePath} has too many references to describe in one protocol frame`);
    current.push(item);
    bytes += item.fileSize;
    frame += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * PUTs the file with node:http(s) rather than fetch: the upload URL signs Content-Length, which
 * fetch does not let a caller set (it would send a stream chunked, and S3 refuses that).
 */
function put(cache: string, item: Prepared, url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<void> {
  const fail = (why: string) => new CachePushError(cache, `uploading ${item.info.storePath}: ${why} (${redact(url)})`);
  return new Promise((resolve, reject) => {
    const request = (url.startsWith("https:") ? https : http).request(
      url,
      { method: "PUT", headers: { "content-type": "application/x-nix-nar", ...headers, "content-length": String(item.fileSize) }, signal, timeout: 600_000 },
      (response) => {
        let said = "";
        response.on("data", (d: Buffer) => (said = (said + d.toString()).slice(0, 2000)));
        response.on("end", () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(fail(`HTTP ${status}${said.trim() ? `: ${said.trim().slice(0, 300)}` : ""}`));
        });
        response.on("error", (err) => reject(fail(err.message)));
      },
    );
    request.on("timeout", () => request.destroy(new Error("no answer within 600 s")));
    request.on("error", (err: NodeJS.ErrnoException) => reject(signal?.aborted ? err : fail(err.code === "ECONNREFUSED" ? "connection refused" : err.message)));
    if (item.bytes !== undefined) request.end(item.bytes);
    else createReadStream(item.file!).on("error", (err) => request.destroy(err)).pipe(request);
  });
}
