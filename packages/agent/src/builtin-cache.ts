/**
 * Nimbus's built-in cache on the agent (docs/cache.md): on by default (`builtinCache = false`
 * turns it off), read by Nix at `{apiBaseUrl}/cache` with the session's read key from a private
 * netrc, asked in bulk with `POST /cache/missing`, and pushed to through presigned URLs the
 * service hands out over the socket. The agent holds no cloud credential and no signing key:
 * the service signs what it publishes; its public key comes with every welcome.
 */
import { randomUUID } from "node:crypto";
import {
  basicAuthorization,
  type BinaryCacheClient,
  type BuiltinUploadChannel,
  CachePushError,
  completeUploads,
  localPathInfos,
  nimbusPresence,
  type NetrcEntry,
  sessionCacheKeyFromSecret,
  type UploadOptions,
  uploadToBuiltinCache,
} from "@nimbus/cache";
import {
  BUILTIN_CACHE_NAME,
  type CacheInfo,
  type CacheUploadResult,
  type CacheUploadUrls,
  type UploadedPath,
  type UploadFile,
  type UploadSlot,
  type UploadVerdict,
  type Welcome,
} from "@nimbus/protocol";
import type { Link } from "./outbox.ts";

/** How long one request may wait for its answer, across reconnects. */
const REQUEST_TIMEOUT_MS = 5 * 60_000;

type Reply = CacheUploadUrls | CacheUploadResult;

interface Pending {
  message: Parameters<Link["send"]>[0];
  resolve(reply: Reply): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Upload requests over the socket, answered by request id. A request whose connection drops
 * before the answer is sent again after the next welcome (both requests are idempotent).
 */
export class BuiltinCacheChannel implements BuiltinUploadChannel {
  private readonly pending = new Map<string, Pending>();
  private key: string | undefined;

  constructor(private readonly link: Link) {}

  /** The service's public key, from the last welcome (undefined before the first, or from a service without the cache). */
  get publicKey(): string | undefined {
    return this.key;
  }

  welcomed(welcome: Welcome): void {
    this.key = welcome.cache?.publicKey;
    for (const request of this.pending.values()) this.link.send(request.message);
  }

  reply(message: Reply): void {
    const request = this.pending.get(message.requestId);
    if (request === undefined) return;
    this.pending.delete(message.requestId);
    clearTimeout(request.timer);
    request.resolve(message);
  }

  async requestUploads(files: UploadFile[], signal?: AbortSignal): Promise<UploadSlot[]> {
    const reply = await this.request((requestId) => ({ type: "cache-upload-request", requestId, files }), signal);
    if (reply.type !== "cache-upload-urls") throw new CachePushError(BUILTIN_CACHE_NAME, "the service answered an upload request with something else");
    return reply.files;
  }

  async complete(paths: UploadedPath[], signal?: AbortSignal): Promise<UploadVerdict[]> {
    const reply = await this.request((requestId) => ({ type: "cache-upload-complete", requestId, paths }), signal);
    if (reply.type !== "cache-upload-result") throw new CachePushError(BUILTIN_CACHE_NAME, "the service answered a completion with something else");
    return reply.paths;
  }

  private request(make: (requestId: string) => Parameters<Link["send"]>[0], signal?: AbortSignal): Promise<Reply> {
    const requestId = randomUUID().replaceAll("-", "");
    const message = make(requestId);
    return new Promise<Reply>((resolve, reject) => {
      const fail = (error: Error) => {
        if (!this.pending.delete(requestId)) return;
        clearTimeout(entry.timer);
        reject(error);
      };
      const entry: Pending = {
        message,
        resolve,
        reject,
        timer: setTimeout(() => fail(new CachePushError(BUILTIN_CACHE_NAME, `no answer from the service within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS),
      };
      this.pending.set(requestId, entry);
      signal?.addEventListener("abort", () => fail(signal.reason instanceof Error ? signal.reason : new Error("aborted")), { once: true });
      this.link.send(message);
    });
  }
}

export interface BuiltinCacheSetup {
  apiBaseUrl: string;
  sessionId: string;
  sessionSecret: string;
  channel: BuiltinCacheChannel;
  /** Scratch space for compressed NARs waiting for their upload. */
  tempDir: string;
}

/** The URL Nix substitutes from. */
export const builtinCacheUrl = (apiBaseUrl: string) => `${apiBaseUrl.replace(/\/+$/, "")}/cache`;

/** The netrc line that lets Nix read the cache: the session id and its read key, never the session secret. */
export function builtinNetrcEntry(setup: Pick<BuiltinCacheSetup, "apiBaseUrl" | "sessionId" | "sessionSecret">): NetrcEntry {
  return { machine: new URL(setup.apiBaseUrl).hostname, login: setup.sessionId, password: sessionCacheKeyFromSecret(setup.sessionSecret) };
}

/** What the agent tells the service of the built-in cache (its key is the service's own). */
export const builtinCacheInfo: CacheInfo = { name: BUILTIN_CACHE_NAME, kind: "NimbusCache", publicKeys: [], push: true, pull: true };

export function builtinCacheClient(setup: BuiltinCacheSetup): BinaryCacheClient {
  const uploadOptions = (options: UploadOptions) => ({
    tempDir: setup.tempDir,
    signal: options.signal,
    cache: BUILTIN_CACHE_NAME,
    ...(options.publishLater ? { publishLater: true } : {}),
  });
  const entry = builtinNetrcEntry(setup);
  const presence = nimbusPresence({
    apiBaseUrl: setup.apiBaseUrl,
    authorization: () => basicAuthorization(entry.login!, entry.password!),
    cache: BUILTIN_CACHE_NAME,
  });
  return {
    cache: BUILTIN_CACHE_NAME,
    kind: "NimbusCache",
    push: true,
    substituter: builtinCacheUrl(setup.apiBaseUrl),
    missing: (paths, query) => presence.missing(paths, query),
    upload: async (paths, options = {}) => {
      const infos = options.infos !== undefined && paths.every((p) => options.infos!.has(p)) ? options.infos : await localPathInfos(paths, { signal: options.signal });
      const { unpublished } = await uploadToBuiltinCache(paths, infos, setup.channel, uploadOptions(options));
      return unpublished ? { unpublished } : undefined;
    },
    // The service answers `present` for a published path when asked for its upload: no POST /cache/missing first.
    uploadUnasked: (paths, options) => uploadToBuiltinCache(paths, options.infos, setup.channel, uploadOptions(options)),
    publish: async (claims, signal) => {
      await completeUploads(setup.channel, claims, BUILTIN_CACHE_NAME, signal);
    },
  };
}
