/**
 * `binary-caches.json`, in Hercules CI's format (an object from cache name to its details),
 * plus Nimbus's `AtticCache`. Every problem names the cache and the key. Unknown kinds are
 * skipped with a warning, as Hercules does, so a file shared with Hercules agents keeps working.
 *
 * Secrets (tokens, signing keys) stay in the returned config; `publicView` is what may leave
 * the agent.
 */
import { readFile, stat } from "node:fs/promises";
import { z } from "zod";
import { CacheConfigError } from "./errors.ts";
import { NixKeyError, parsePublicKey, parseSecretKey, type PublicKey, type SecretKey } from "./signing.ts";
import { type CheckedStoreUri, checkStoreUri } from "./store-uri.ts";

export const CACHE_KINDS = ["NixCache", "CachixCache", "AtticCache"] as const;
export type CacheKind = (typeof CACHE_KINDS)[number];

interface CacheCommon {
  name: string;
  publicKeys: PublicKey[];
  /** The key this agent signs with before pushing (Cachix, NixCache); Attic signs on the server. */
  signingKey: SecretKey | undefined;
  /** Whether this agent pushes to it (it has what pushing needs: a signing key or a token). */
  push: boolean;
}

export interface NixCacheConfig extends CacheCommon {
  kind: "NixCache";
  store: CheckedStoreUri;
}

export interface CachixCacheConfig extends CacheCommon {
  kind: "CachixCache";
  authToken: string | undefined;
}

export interface AtticCacheConfig extends CacheCommon {
  kind: "AtticCache";
  /** The Attic server's base URL, with a trailing slash. */
  endpoint: string;
  /** The cache's name on that server. */
  cache: string;
  token: string | undefined;
}

export type CacheConfig = NixCacheConfig | CachixCacheConfig | AtticCacheConfig;

export interface BinaryCaches {
  caches: CacheConfig[];
  /** Things worth a log line that do not stop the agent (an unknown kind). */
  warnings: string[];
}

/** What the service may learn about a cache: never a token or a signing key. */
export const PublicCacheInfo = z.strictObject({
  name: z.string(),
  kind: z.enum(CACHE_KINDS),
  publicKeys: z.array(z.string()),
  push: z.boolean(),
  pull: z.boolean(),
});
export type PublicCacheInfo = z.infer<typeof PublicCacheInfo>;

const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KeyList = z.array(z.string());
const Secret = z.string().min(1);
const HttpUrl = z.url({ protocol: /^https?$/ });

const SCHEMAS = {
  NixCache: z.strictObject({ kind: z.literal("NixCache"), storeURI: z.string().min(1), publicKeys: KeyList, signingKeys: KeyList.default([]) }),
  CachixCache: z.strictObject({
    kind: z.literal("CachixCache"),
    publicKeys: KeyList,
    signingKeys: KeyList.default([]),
    authToken: Secret.optional(),
  }),
  AtticCache: z.strictObject({
    kind: z.literal("AtticCache"),
    endpoint: HttpUrl,
    cache: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    publicKeys: KeyList,
    token: Secret.optional(),
  }),
} as const;

const EXPECTED: Record<string, string> = {
  kind: `one of ${CACHE_KINDS.map((k) => `"${k}"`).join(", ")}`,
  storeURI: 'a store URI such as "file:///var/cache/nix" or "https://cache.example.com"',
  publicKeys: 'a list of public keys such as "cache.example.com-1:<base64>"',
  signingKeys: 'a list of secret keys such as "cache.example.com-1:<base64>"',
  authToken: "a non-empty string (the Cachix auth token)",
  endpoint: 'the Attic server\'s http:// or https:// URL, such as "https://attic.example.com"',
  cache: "the cache's name on the Attic server (letters, digits, . _ -)",
  token: "a non-empty string (an Attic token)",
};

export interface ParseOptions {
  /** For messages: "binary-caches.json" by default. */
  source?: string;
  /** The local Nix version, for the s3:// message. */
  nixVersion?: string;
}

/** Parses and validates the text of a `binary-caches.json`. Throws CacheConfigError listing every problem. */
export function parseBinaryCaches(text: string, options: ParseOptions = {}): BinaryCaches {
  const source = options.source ?? "binary-caches.json";
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CacheConfigError(`${source}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CacheConfigError(`${source}: must be a JSON object from cache names to caches, e.g. {"mycache": {"kind": "CachixCache", …}}`);
  }
  const problems: string[] = [];
  const warnings: string[] = [];
  const caches: CacheConfig[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const at = `${source}: cache "${name}"`;
    if (!CACHE_NAME.test(name)) {
      problems.push(`${at}: a cache name must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problems.push(`${at}: must be an object with a "kind"`);
      continue;
    }
    const kind = (value as { kind?: unknown }).kind;
    if (typeof kind !== "string") {
      problems.push(`${at}: missing "kind" (${EXPECTED.kind})`);
      continue;
    }
    if (!(CACHE_KINDS as readonly string[]).includes(kind)) {
      warnings.push(`${at}: unknown kind "${kind}" — this cache is ignored (known kinds: ${CACHE_KINDS.join(", ")})`);
      continue;
    }
    const cacheProblems: string[] = [];
    const cache = parseCache(name, kind as CacheKind, value, options.nixVersion, (key, message) => cacheProblems.push(`${at}: ${key === "" ? "" : `"${key}" `}${message}`));
    problems.push(...cacheProblems);
    if (cache !== undefined && cacheProblems.length === 0) caches.push(cache);
  }
  if (problems.length > 0) throw new CacheConfigError(problems);
  return { caches, warnings };
}

type Report = (key: string, message: string) => void;

function parseCache(name: string, kind: CacheKind, value: object, nixVersion: string | undefined, report: Report): CacheConfig | undefined {
  const parsed = SCHEMAS[kind].safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) report(key, `is not a ${kind} key (${Object.keys(SCHEMAS[kind].shape).join(", ")})`);
        continue;
      }
      const key = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
      const top = String(issue.path[0] ?? "");
      const given = (value as Record<string, unknown>)[top];
      report(key, given === undefined ? `is missing (${EXPECTED[top] ?? issue.message})` : `must be ${EXPECTED[top] ?? issue.message}`);
    }
    return undefined;
  }
  const data = parsed.data;

  const publicKeys: PublicKey[] = [];
  data.publicKeys.forEach((text, i) => {
    try {
      publicKeys.push(parsePublicKey(text));
    } catch (err) {
      report(`publicKeys[${i}]`, `is not a public key: ${(err as NixKeyError).message}`);
    }
  });
  if (data.publicKeys.length === 0) {
    report("publicKeys", "must list at least one key: Nix refuses unsigned paths from a cache it has no key for");
  }

  let signingKey: SecretKey | undefined;
  const signingKeys = "signingKeys" in data ? data.signingKeys : [];
  if (signingKeys.length > 1) report("signingKeys", "may hold one key: Nimbus signs with a single key per cache");
  if (signingKeys.length === 1) {
    try {
      // Cachix prints its signing keys as bare base64; their name is implied.
      signingKey = parseSecretKey(signingKeys[0]!, kind === "CachixCache" ? `${name}.cachix.org-1` : undefined);
      if (publicKeys.length > 0 && !publicKeys.some((k) => k.text === signingKey!.publicKey.text)) {
        report(
          "signingKeys[0]",
          `does not match any of "publicKeys": its public key is ${signingKey.publicKey.text}, so readers would refuse what it signs`,
        );
      }
    } catch (err) {
      report("signingKeys[0]", `is not a secret key: ${(err as Error).message}`);
    }
  }

  switch (data.kind) {
    case "NixCache": {
      const store = checkStoreUri(data.storeURI, nixVersion);
      if ("problem" in store) {
        report("storeURI", store.problem);
        return undefined;
      }
      return { kind: "NixCache", name, publicKeys, signingKey, push: signingKey !== undefined, store };
    }
    case "CachixCache":
      return {
        kind: "CachixCache",
        name,
        publicKeys,
        signingKey,
        authToken: data.authToken,
        push: signingKey !== undefined || data.authToken !== undefined,
      };
    case "AtticCache": {
      const endpoint = new URL(data.endpoint);
      if (endpoint.username !== "" || endpoint.password !== "") {
        report("endpoint", 'must not carry a user name or password: put the token in "token"');
        return undefined;
      }
      if (!endpoint.pathname.endsWith("/")) endpoint.pathname += "/";
      return {
        kind: "AtticCache",
        name,
        publicKeys,
        signingKey: undefined,
        endpoint: endpoint.href,
        cache: data.cache,
        token: data.token,
        push: data.token !== undefined,
      };
    }
  }
}

/**
 * Reads `binary-caches.json`. A file holding tokens or signing keys must not be readable by
 * other users: builders run as other users (the nixbld accounts) and could read it.
 */
export async function loadBinaryCaches(filePath: string, options: Omit<ParseOptions, "source"> = {}): Promise<BinaryCaches> {
  let text: string;
  try {
    text = await readFile(filePath, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CacheConfigError(
      code === "ENOENT"
        ? `${filePath}: no such file (binaryCachesPath in agent.toml points here; see docs/agent.md, "Binary caches", for its format)`
        : `${filePath}: cannot be read (${code ?? (err as Error).message})`,
    );
  }
  const config = parseBinaryCaches(text, { ...options, source: filePath });
  const hasSecrets = config.caches.some((c) => c.signingKey !== undefined || ("authToken" in c && c.authToken) || ("token" in c && c.token));
  const mode = (await stat(filePath)).mode & 0o777;
  if (hasSecrets && (mode & 0o077) !== 0) {
    throw new CacheConfigError(
      `${filePath}: holds tokens or signing keys but is readable by other users (mode ${mode.toString(8).padStart(4, "0")}); builders run as other users and could read it — chmod 600 ${filePath}`,
    );
  }
  return config;
}

/** What may be sent to the service: names, kinds, public keys, push/pull — never tokens or signing keys. */
export function publicView(config: BinaryCaches): PublicCacheInfo[] {
  return config.caches.map((cache) =>
    PublicCacheInfo.parse({
      name: cache.name,
      kind: cache.kind,
      publicKeys: cache.publicKeys.map((k) => k.text),
      push: cache.push,
      pull: true,
    }),
  );
}
