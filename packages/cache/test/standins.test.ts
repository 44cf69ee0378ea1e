/**
 * Cachix and Attic, pushed to through their published APIs. Their servers cannot be reached
 * from here, so the tests run against stand-ins that follow those APIs (test/support); the
 * read side is checked by real Nix substituting into a separate store from what was pushed,
 * reading Cachix as the plain HTTP cache it is.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type CacheConfig,
  generateSecretKey,
  localPathInfos,
  netrcFor,
  openCaches,
  parseBinaryCaches,
  parseNarinfo,
  pushClosure,
  pushToCaches,
  storePathHash,
  substituterArgs,
  writePrivateNetrc,
} from "../src/index.ts";
import { atticPushPath } from "../src/attic-push.ts";
import { startAtticStandin, type AtticStandin } from "../../../test/support/attic-standin.ts";
import { startCachixStandin, type CachixStandin } from "../../../test/support/cachix-standin.ts";
import { createSeparateStore, type SeparateStore } from "../../../test/support/separate-store.ts";
import { type Built, buildCount, buildPair, markerDir, nixTestEnv, tmpRoot } from "./nix-fixtures.ts";

const cachixKey = generateSecretKey("mycache.cachix.org-1");
const managedKey = generateSecretKey("managed.cachix.org-1");
const atticKey = generateSecretKey("team-attic-1");

let dir: string;
let markers: string;
let env: NodeJS.ProcessEnv;
let cachix: CachixStandin;
let attic: AtticStandin;
let built: Built;
const stores: SeparateStore[] = [];

before(async () => {
  dir = await tmpRoot();
  markers = await markerDir();
  env = await nixTestEnv(dir);
  cachix = await startCachixStandin({
    mycache: { token: "cachix-write-token", private: true },
    managed: { token: "managed-token", private: false, managedKey },
  });
  attic = await startAtticStandin({ team: { signingKey: atticKey } }, { "attic-token": { pull: ["team"], push: ["team"] } });
  built = await buildPair(dir, "standins", markers, env);
});

after(async () => {
  await Promise.all([cachix.close(), attic.close()]);
  for (const s of stores) await s.remove();
  await rm(dir, { recursive: true, force: true });
  await rm(markers, { recursive: true, force: true });
});

const services = () => ({ cachixApiUrl: cachix.url, cachixCacheUrl: (name: string) => cachix.cacheUrl(name) });

function caches(json: Record<string, unknown>): CacheConfig[] {
  return parseBinaryCaches(JSON.stringify(json)).caches;
}

/** Realises `target` in a fresh store B with only `configs` as substituters (and their netrc). */
async function substituteInB(configs: CacheConfig[], target: string, withNetrc = true) {
  const b = await createSeparateStore();
  stores.push(b);
  const netrcFile = withNetrc ? await writePrivateNetrc(path.join(dir, `netrc-${stores.length}`), netrcFor(configs, services())) : undefined;
  const result = await b.run("nix-store", [...substituterArgs(configs, { machineSubstituters: false, netrcFile, services: services() }), "--realise", target]);
  return { b, result };
}

describe("Cachix (stand-in following its published API)", () => {
  const config = () =>
    caches({ mycache: { kind: "CachixCache", publicKeys: [cachixKey.publicKey.text], signingKeys: [cachixKey.text.split(":")[1]], authToken: "cachix-write-token" } });

  it("pushes the output closure: one bulk query, multipart upload, narinfo signed locally", async () => {
    cachix.counts.clear();
    const [client] = openCaches(config(), { env, services: services(), cachixPartSize: 64 });
    const result = await pushClosure(client!, [built.outPath], { what: "outputs", env });
    assert.deepEqual(result, { cache: "mycache", status: "pushed", pushed: 2, alreadyPresent: 0 });
    assert.equal(cachix.counts.get("bulk"), 1);
    assert.equal(cachix.counts.get("complete"), 2);
    assert.ok((cachix.counts.get("put") ?? 0) > 2, "small parts: more than one part per NAR");
    const info = parseNarinfo(cachix.caches.get("mycache")!.narinfos.get(storePathHash(built.outPath))!);
    const local = (await localPathInfos([built.outPath], { env })).get(built.outPath)!;
    assert.equal(info.narHash, local.narHash);
    assert.deepEqual(info.references, [built.depOutPath]);
    assert.match(info.sigs[0]!, /^mycache\.cachix\.org-1:/);
    const again = await pushClosure(client!, [built.outPath], { what: "outputs", env });
    assert.deepEqual(again, { cache: "mycache", status: "pushed", pushed: 0, alreadyPresent: 2 });
  });

  it("is read by Nix as a plain HTTP binary cache, a private one through the generated netrc", async () => {
    const { b, result } = await substituteInB(config(), built.outPath);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await b.run("cat", [`${built.outPath}/hello`])).stdout, "hello\n");
    assert.equal(await buildCount(markers, "standins"), 1, "substituted, not built");
    const denied = await substituteInB(config(), built.outPath, false);
    assert.notEqual(denied.result.code, 0, "without the token the private cache cannot be read");
  });

  it("without a signing key, Cachix's managed key signs and readers trusting it substitute", async () => {
    const configs = caches({ managed: { kind: "CachixCache", publicKeys: [managedKey.publicKey.text], authToken: "managed-token" } });
    const [client] = openCaches(configs, { env, services: services() });
    assert.equal((await pushClosure(client!, [built.outPath], { what: "outputs", env })).status, "pushed");
    const { result } = await substituteInB(configs, built.outPath);
    assert.equal(result.code, 0, result.stderr);
  });

  it("a refused upload is reported as failed for that cache with Cachix's answer, and the upload is aborted", async () => {
    const configs = caches({ managed: { kind: "CachixCache", publicKeys: [managedKey.publicKey.text], authToken: "managed-token" } });
    const [client] = openCaches(configs, { env, services: services() });
    cachix.counts.clear();
    cachix.failComplete = { status: 413, message: "cache size limit reached" };
    try {
      const other = await buildPair(dir, "standins-refused", markers, env);
      const result = await pushClosure(client!, [other.outPath], { what: "outputs", env });
      assert.equal(result.status, "failed");
      assert.match(result.status === "failed" ? result.reason : "", /^cache "managed" refused the push: HTTP 413: cache size limit reached/);
      assert.ok((cachix.counts.get("abort") ?? 0) >= 1);
    } finally {
      cachix.failComplete = undefined;
    }
  });

  it("a wrong token is refused clearly", async () => {
    const configs = caches({ mycache: { kind: "CachixCache", publicKeys: [cachixKey.publicKey.text], authToken: "wrong" } });
    const [client] = openCaches(configs, { env, services: services() });
    const result = await pushClosure(client!, [built.outPath], { what: "outputs", env });
    assert.equal(result.status, "failed");
    assert.match(result.status === "failed" ? result.reason : "", /cache "mycache" cannot be reached: HTTP 401: this cache is private — check the cache's token/);
  });
});

describe("Attic (stand-in following its published API)", () => {
  const config = () =>
    caches({ team: { kind: "AtticCache", endpoint: attic.url, cache: "team", token: "attic-token", publicKeys: [atticKey.publicKey.text] } });

  it("pushes with one get-missing-paths query and one upload-path per path; Attic signs", async () => {
    attic.counts.clear();
    const [client] = openCaches(config(), { env });
    const result = await pushClosure(client!, [built.outPath], { what: "outputs", env });
    assert.deepEqual(result, { cache: "team", status: "pushed", pushed: 2, alreadyPresent: 0 });
    assert.deepEqual(Object.fromEntries(attic.counts), { missing: 1, upload: 2 });
    assert.equal(attic.lastUploadVia, "header");
  });

  it("is read by Nix from {endpoint}/{cache} with the token from the netrc", async () => {
    const { b, result } = await substituteInB(config(), built.outPath);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await b.run("cat", [`${built.outPath}/hello`])).stdout, "hello\n");
  });

  it("sends metadata of 4 KiB or more as a body preamble, as Attic's client does", async () => {
    const [configForPush] = config();
    const info = (await localPathInfos([built.depOutPath], { env })).get(built.depOutPath)!;
    const many = Array.from({ length: 80 }, (_, i) => `/nix/store/${storePathHash(built.outPath)}-reference-number-${i}-with-a-long-name`);
    await atticPushPath(configForPush as Extract<CacheConfig, { kind: "AtticCache" }>, { ...info, references: many }, { env });
    assert.equal(attic.lastUploadVia, "preamble");
    const stored = parseNarinfo(attic.caches.get("team")!.narinfos.get(storePathHash(built.depOutPath))!);
    assert.equal(stored.references.length, 80);
  });

  it("a bad token fails the push for that cache only", async () => {
    const configs = [
      ...caches({ bad: { kind: "AtticCache", endpoint: attic.url, cache: "team", token: "nope", publicKeys: [atticKey.publicKey.text] } }),
      ...config(),
    ];
    const results = await pushToCaches(openCaches(configs, { env }), [built.outPath], { what: "outputs", env });
    assert.equal(results[0]!.status, "failed");
    assert.match(results[0]!.status === "failed" ? results[0]!.reason : "", /cache "bad" cannot be reached: HTTP 401: Unauthorized: Unauthorized\./);
    assert.equal(results[1]!.status, "pushed");
  });
});
