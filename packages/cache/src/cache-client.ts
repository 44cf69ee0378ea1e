/**
 * One interface over every configured cache: bulk presence (`missing`) and upload of paths
 * the cache lacks (`upload`), whatever the kind. `pushClosure` and `pushToCaches` are what the
 * agent calls: push the closure of some roots, only what each cache lacks, one result per cache.
 */
import type { UploadedPath } from "@nimbus/protocol";
import { atticPresence } from "./attic-presence.ts";
import { atticPushPath } from "./attic-push.ts";
import type { CacheConfig, CacheKind } from "./binary-caches.ts";
import { type CacheServices, cachixApiBase, netrcEntriesFor, substituterUrl } from "./cache-endpoints.ts";
import { cachixPresence } from "./cachix-presence.ts";
import { cachixPushPath } from "./cachix-push.ts";
import { inReferenceOrder, mapConcurrently } from "./concurrency.ts";
import { CachePushError, CacheUnreachableError } from "./errors.ts";
import { filePresence } from "./file-presence.ts";
import { httpPresence } from "./http-presence.ts";
import { type LocalPathInfo, localPathInfos, type PathInfoOptions, storeClosure } from "./local-store.ts";
import { type NetrcEntry, netrcCredentials } from "./netrc.ts";
import { nixCopyPush } from "./nix-copy-push.ts";
import type { NixRunOptions } from "./nix-process.ts";
import type { CachePresence, MissingResult, QueryOptions } from "./presence.ts";
import { referencesFirst } from "./topological.ts";

export interface CacheClientOptions extends NixRunOptions {
  services?: CacheServices;
  /** netrc entries for plain HTTP caches (the machine's netrc); the caches' own tokens are added. */
  netrc?: readonly NetrcEntry[];
  /** Extra Nix `--option`s for `nix copy` (e.g. netrc-file). */
  nixArgs?: readonly string[];
  /** A private directory of the agent for short-lived key files. */
  privateDir?: string;
  /** narinfo requests in flight for plain HTTP caches (default 64). */
  httpConcurrency?: number;
  /** Paths uploaded at once to Cachix or Attic (default 4). */
  uploadConcurrency?: number;
  /** Bytes per Cachix multipart part. */
  cachixPartSize?: number;
}

export interface BinaryCacheClient extends CachePresence {
  /** `NimbusCache`: the built-in cache, which is not configured in binary-caches.json. */
  readonly kind: CacheKind | "NimbusCache";
  /** Whether this agent pushes to it. */
  readonly push: boolean;
  /** The URL Nix substitutes from. */
  readonly substituter: string;
  /**
   * Uploads paths the cache lacks, ordered references first; throws CachePushError naming the
   * cache. `infos` (the paths' registration, when the caller has it) spares asking Nix again.
   */
  upload(paths: readonly string[], options?: UploadOptions): Promise<void | Unpublished>;
  /**
   * Uploads paths without asking first which the cache lacks: it says so itself as it hands out
   * uploads (the built-in cache). For a few paths, one round trip less than `missing` then `upload`.
   */
  uploadUnasked?(paths: readonly string[], options: UploadOptions & { infos: ReadonlyMap<string, LocalPathInfo> }): Promise<{ uploaded: number; alreadyPresent: number } & Unpublished>;
  /** Publishes paths an upload left `unpublished` (the built-in cache); throws CachePushError naming the first refused. */
  publish?(claims: UploadedPath[], signal?: AbortSignal): Promise<void>;
}

/** Paths uploaded with `publishLater` and left for the caller to publish: their claims, for the build's result. */
export interface Unpublished {
  unpublished?: UploadedPath[];
}

/** Closures up to this many paths go to `uploadUnasked` when the cache has it: compressing them is cheaper than asking. */
export const UNASKED_MAX_PATHS = 8;

export interface UploadOptions {
  signal?: AbortSignal;
  infos?: ReadonlyMap<string, LocalPathInfo>;
  /** The built-in cache may leave its last completion to the caller (`unpublished`), who sends it with a build's result. */
  publishLater?: boolean;
}

export function openCache(config: CacheConfig, options: CacheClientOptions = {}): BinaryCacheClient {
  const services = options.services ?? {};
  const substituter = substituterUrl(config, services);
  const nix: NixRunOptions = { env: options.env, signal: options.signal };
  const uploadConcurrency = options.uploadConcurrency ?? 4;
  let presence: CachePresence;
  let upload: (paths: readonly string[], known?: ReadonlyMap<string, LocalPathInfo>) => Promise<void>;
  const infosOf = (paths: readonly string[], known?: ReadonlyMap<string, LocalPathInfo>) =>
    known !== undefined && paths.every((p) => known.has(p)) ? known : localPathInfos(paths, nix);
  switch (config.kind) {
    case "NixCache": {
      const store = config.store;
      if (store.scheme === "file") presence = filePresence(config.name, store.directory!);
      else {
        const credentials = netrcCredentials(options.netrc ?? [], new URL(store.baseUrl!).hostname);
        presence = httpPresence(config.name, store.baseUrl!, { credentials, concurrency: options.httpConcurrency });
      }
      upload = (paths) => nixCopyPush(config, paths, { ...nix, nixArgs: options.nixArgs, privateDir: options.privateDir });
      break;
    }
    case "CachixCache": {
      const apiBase = cachixApiBase(services);
      presence = cachixPresence(config.name, apiBase, config.authToken);
      upload = async (paths, known) => {
        const infos = await infosOf(paths, known);
        await inReferenceOrder(paths, (p) => infos.get(p)!.references, uploadConcurrency, (p) =>
          cachixPushPath(config, infos.get(p)!, { ...nix, apiBase, partSize: options.cachixPartSize }),
        );
      };
      break;
    }
    case "AtticCache": {
      presence = atticPresence(config.name, config.endpoint, config.cache, config.token);
      upload = async (paths, known) => {
        const infos = await infosOf(paths, known);
        await inReferenceOrder(paths, (p) => infos.get(p)!.references, uploadConcurrency, (p) => atticPushPath(config, infos.get(p)!, nix));
      };
      break;
    }
  }
  return {
    cache: config.name,
    kind: config.kind,
    push: config.push,
    substituter,
    missing: (paths, query) => presence.missing(paths, query),
    upload: (paths, uploadOptions) => upload(paths, uploadOptions?.infos),
  };
}

/** Clients for every configured cache; `netrc` gains the caches' own tokens for HTTP reads. */
export function openCaches(configs: readonly CacheConfig[], options: CacheClientOptions = {}): BinaryCacheClient[] {
  const netrc = [...(options.netrc ?? []), ...netrcEntriesFor(configs, options.services)];
  return configs.map((c) => openCache(c, { ...options, netrc }));
}

export type PushResult =
  | ({ cache: string; status: "pushed"; pushed: number; alreadyPresent: number } & Unpublished)
  | { cache: string; status: "failed"; reason: string };

export interface PushOptions extends PathInfoOptions {
  /** "derivations": roots are `.drv` files, their closure of `.drv`s and sources is pushed; "outputs": roots are output paths. */
  what: "derivations" | "outputs";
  /** A build's outputs: the built-in cache's last completion may go with its result (`unpublished`). */
  publishLater?: boolean;
}

/** Pushes the closure of `roots`, only what the cache lacks. Never throws for a cache's failure: it is the result. */
export async function pushClosure(client: BinaryCacheClient, roots: readonly string[], options: PushOptions): Promise<PushResult> {
  try {
    if (options.what === "derivations" && roots.some((r) => !r.endsWith(".drv"))) {
      throw new Error("pushing derivations needs .drv paths as roots");
    }
    const { closure, infos: known } = await closureWithInfos(roots, options);
    if (client.uploadUnasked !== undefined && closure.length <= UNASKED_MAX_PATHS && closure.every((p) => known.has(p))) {
      const ordered = referencesFirst(closure, (p) => known.get(p)?.references ?? []);
      const counts = await client.uploadUnasked(ordered, { signal: options.signal, infos: known, publishLater: options.publishLater });
      return { cache: client.cache, status: "pushed", pushed: counts.uploaded, alreadyPresent: counts.alreadyPresent, ...unpublishedOf(counts) };
    }
    const { missing } = await client.missing(closure, { signal: options.signal });
    const unknown = [...missing].filter((p) => !known.has(p));
    const infos = unknown.length === 0 ? known : new Map([...known, ...(await localPathInfos(unknown, options))]);
    const ordered = referencesFirst([...missing], (p) => infos.get(p)?.references ?? []);
    const uploaded = await client.upload(ordered, { signal: options.signal, infos, publishLater: options.publishLater });
    return { cache: client.cache, status: "pushed", pushed: ordered.length, alreadyPresent: closure.length - ordered.length, ...unpublishedOf(uploaded) };
  } catch (err) {
    if (err instanceof CachePushError || err instanceof CacheUnreachableError) return { cache: client.cache, status: "failed", reason: err.message };
    return { cache: client.cache, status: "failed", reason: `cache "${client.cache}": ${(err as Error).message}` };
  }
}

const unpublishedOf = (uploaded: void | Unpublished): Unpublished => (uploaded?.unpublished ? { unpublished: uploaded.unpublished } : {});

/**
 * The closure of `roots` and what Nix registered for the paths it had to ask about anyway: the
 * roots' registration first, which is the whole closure when they refer only to each other (an
 * output with no dependencies: one Nix call, not three).
 */
export async function closureWithInfos(
  roots: readonly string[],
  options: PathInfoOptions = {},
): Promise<{ closure: string[]; infos: ReadonlyMap<string, LocalPathInfo> }> {
  const infos = await localPathInfos([...new Set(roots)], options);
  const closed = [...infos.values()].every((info) => info.references.every((r) => infos.has(r)));
  return { closure: closed ? [...infos.keys()] : await storeClosure(roots, options), infos };
}

/** Pushes to every push cache at once; one result per cache. */
export async function pushToCaches(clients: readonly BinaryCacheClient[], roots: readonly string[], options: PushOptions): Promise<PushResult[]> {
  return Promise.all(clients.filter((c) => c.push).map((c) => pushClosure(c, roots, options)));
}

/**
 * Which of `storePaths` are in no cache: asks every cache in bulk, all at once. A cache that
 * cannot be asked is reported in `unreachable` and counts as lacking everything.
 */
export async function missingEverywhere(
  clients: readonly BinaryCacheClient[],
  storePaths: readonly string[],
  options: QueryOptions = {},
): Promise<{ missing: Set<string>; byCache: Map<string, MissingResult>; unreachable: CacheUnreachableError[] }> {
  const byCache = new Map<string, MissingResult>();
  const unreachable: CacheUnreachableError[] = [];
  await mapConcurrently(clients, clients.length, async (client) => {
    try {
      byCache.set(client.cache, await client.missing(storePaths, options));
    } catch (err) {
      if (!(err instanceof CacheUnreachableError)) throw err;
      unreachable.push(err);
    }
  });
  const missing = new Set<string>();
  for (const storePath of storePaths) {
    const present = [...byCache.values()].some((r) => !r.missing.has(storePath));
    if (!present) missing.add(storePath);
  }
  return { missing, byCache, unreachable };
}
