/**
 * The agent's binary caches (docs/agent.md, "Binary caches"): `binary-caches.json` read and
 * checked, a client per cache (bulk presence, pushes), a presence client per other substituter
 * of the machine's Nix, the Nix options that make every Nix call read the caches, and what the
 * service may learn of them. Secrets stay here: tokens go to a netrc file and signing keys to
 * short-lived files, both under the agent's private directory (mode 0700).
 */
import { readFile } from "node:fs/promises";
import {
  type BinaryCacheClient,
  type CacheConfig,
  CacheConfigError,
  type CachePresence,
  type CacheServices,
  checkStoreUri,
  filePresence,
  formatNetrc,
  httpPresence,
  loadBinaryCaches,
  type NetrcEntry,
  netrcCredentials,
  netrcEntriesFor,
  netrcFor,
  openCaches,
  parseNetrc,
  publicView,
  substituterSettings,
  substituterUrl,
  writePrivateNetrc,
} from "@nimbus/cache";
import { BUILTIN_CACHE_NAME, type CacheInfo, normalizeSubstituter } from "@nimbus/protocol";
import { type BuiltinCacheSetup, builtinCacheClient, builtinCacheInfo, builtinCacheUrl, builtinNetrcEntry } from "./builtin-cache.ts";
import { AgentConfigError } from "./errors.ts";

export interface AgentCaches {
  /** The configured caches, secrets included: never sent anywhere. */
  configs: CacheConfig[];
  /** One per configured cache: bulk presence and pushes. */
  clients: BinaryCacheClient[];
  /** The machine's own substituters that can be asked in bulk (file://, http(s)://), named by URL. */
  machine: CachePresence[];
  /** What `hello` tells the service of each configured cache. */
  info: CacheInfo[];
  /** The configured caches' substituter URLs, in file order. */
  urls: string[];
  /** `--option`s every Nix call gets: the caches as extra substituters, their keys trusted. */
  optionArgs: string[];
  /** `--option netrc-file <file>` when a cache needs credentials to be read; empty otherwise. */
  credentialArgs: string[];
  /** Worth a log line (an unknown cache kind, a substituter that cannot be asked in bulk). */
  warnings: string[];
  /** The built-in cache's URL, when the agent uses it (its key comes with each welcome). */
  builtinUrl: string | undefined;
}

export interface LoadCachesOptions {
  /** `binaryCachesPath` from agent.toml; none means no configured caches. */
  path: string | undefined;
  nixVersion: string;
  /** The agent's private directory (0700): the netrc and signing-key files go here. */
  privateDir: string;
  /** The substituters the machine's Nix uses besides the configured caches (after `machineSubstituters`). */
  machineSubstituters: readonly string[];
  /** The machine's netrc file (Nix's `netrc-file`), whose entries are kept. */
  machineNetrcFile?: string;
  services?: CacheServices;
  /** Nimbus's built-in cache, unless `builtinCache = false`. */
  builtin?: BuiltinCacheSetup;
}

/** Cachix's hosts, overridden only by tests and self-hosted stand-ins (docs/agent.md). */
export function cacheServicesFromEnv(env: NodeJS.ProcessEnv = process.env): CacheServices {
  const api = env["NIMBUS_CACHIX_API_URL"]?.replace(/\/+$/, "");
  return api ? { cachixApiUrl: api, cachixCacheUrl: (name) => `${api}/api/v1/cache/${name}` } : {};
}

/** Reads and checks `binary-caches.json`; throws AgentConfigError naming the cache and key. */
export async function loadAgentCaches(options: LoadCachesOptions): Promise<AgentCaches> {
  let configs: CacheConfig[] = [];
  const warnings: string[] = [];
  if (options.path !== undefined) {
    try {
      const loaded = await loadBinaryCaches(options.path, { nixVersion: options.nixVersion });
      configs = loaded.caches;
      warnings.push(...loaded.warnings);
    } catch (err) {
      if (err instanceof CacheConfigError) throw new AgentConfigError(err.problems);
      throw err;
    }
  }
  if (options.builtin !== undefined && configs.some((c) => c.name === BUILTIN_CACHE_NAME)) {
    throw new AgentConfigError(
      `${options.path}: cache "${BUILTIN_CACHE_NAME}": this name is the built-in cache's — rename the cache, or set builtinCache = false in agent.toml`,
    );
  }
  const services = options.services ?? {};
  const machineNetrcText = await readMachineNetrc(options.machineNetrcFile);
  const machineNetrc = parseNetrc(machineNetrcText);

  const credentialArgs: string[] = [];
  const builtinEntries = options.builtin === undefined ? [] : [builtinNetrcEntry(options.builtin)];
  if (netrcEntriesFor(configs, services).length > 0 || builtinEntries.length > 0) {
    // Nix reads one netrc: the machine's entries first, then the caches' tokens, then the built-in cache's read key.
    const text = netrcFor(configs, services, machineNetrcText);
    const file = await writePrivateNetrc(options.privateDir, `${text.trimEnd()}${text.trim() === "" ? "" : "\n"}${formatNetrc(builtinEntries)}`);
    credentialArgs.push("--option", "netrc-file", file);
  }
  const clients = openCaches(configs, { services, netrc: machineNetrc, nixArgs: credentialArgs, privateDir: options.privateDir });
  if (options.builtin !== undefined) clients.push(builtinCacheClient(options.builtin));
  const builtinUrl = options.builtin === undefined ? undefined : builtinCacheUrl(options.builtin.apiBaseUrl);
  const urls = [...configs.map((c) => substituterUrl(c, services)), ...(builtinUrl === undefined ? [] : [builtinUrl])];
  const own = new Set(urls.map(normalizeSubstituter));
  const machine: CachePresence[] = [];
  for (const url of options.machineSubstituters.map(normalizeSubstituter)) {
    if (own.has(url)) continue;
    const presence = machinePresence(url, machineNetrc);
    if (presence) machine.push(presence);
    else warnings.push(`substituter ${url} cannot be asked in bulk what it holds (only file://, http:// and https:// can): evaluations count it as holding nothing`);
  }
  const optionArgs = substituterSettings(configs, { services }).flatMap(([name, value]) => ["--option", name, value]);
  const info = [...(publicView({ caches: configs, warnings: [] }) as CacheInfo[]), ...(options.builtin === undefined ? [] : [builtinCacheInfo])];
  return { configs, clients, machine, info, urls, optionArgs, credentialArgs, warnings, builtinUrl };
}

function machinePresence(url: string, netrc: readonly NetrcEntry[]): CachePresence | undefined {
  const checked = checkStoreUri(url);
  if ("problem" in checked) return undefined;
  if (checked.scheme === "file") return filePresence(url, checked.directory!);
  const credentials = netrcCredentials(netrc, new URL(checked.baseUrl!).hostname);
  return httpPresence(url, checked.baseUrl!, credentials ? { credentials } : {});
}

async function readMachineNetrc(file: string | undefined): Promise<string> {
  if (file === undefined) return "";
  // Missing or unreadable: the machine has no credentials Nix could use either.
  return readFile(file, "utf8").catch(() => "");
}


/** `--option`s that make Nix read the built-in cache, trusting the key the service gave in its welcome. */
export function builtinCacheArgs(caches: Pick<AgentCaches, "builtinUrl">, publicKey: string | undefined): string[] {
  if (caches.builtinUrl === undefined || publicKey === undefined) return [];
  return ["--option", "extra-substituters", caches.builtinUrl, "--option", "extra-trusted-public-keys", publicKey];
}
