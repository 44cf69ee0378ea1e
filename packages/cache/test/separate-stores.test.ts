/**
 * Two machines on one host: store A is this host's /nix, store B a fresh /nix in a mount
 * namespace. A builds, pushes signed `.drv` and output closures to a file:// cache and to a
 * plain HTTP cache (Nix's own `nix copy` uploads by PUT); B substitutes both and never builds.
 */
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type BinaryCacheClient,
  CacheUnreachableError,
  fingerprintOf,
  openCaches,
  parseBinaryCaches,
  parseNarinfo,
  parsePublicKey,
  pushClosure,
  pushToCaches,
  storeClosure,
  substituterArgs,
  verifyFingerprint,
} from "../src/index.ts";
import { startHttpBinaryCache, type HttpBinaryCache } from "../../../test/support/http-binary-cache.ts";
import { createSeparateStore, type SeparateStore } from "../../../test/support/separate-store.ts";
import { type Built, buildCount, buildPair, markerDir, nixKeyPair, nixTestEnv, tmpRoot } from "./nix-fixtures.ts";

let dir: string;
let markers: string;
let env: NodeJS.ProcessEnv;
let keys: Awaited<ReturnType<typeof nixKeyPair>>;
let otherKeys: Awaited<ReturnType<typeof nixKeyPair>>;
let http: HttpBinaryCache;
let built: Built;
let fileCacheDir: string;
const stores: SeparateStore[] = [];

function config(entries: Record<string, { storeURI: string; sign?: boolean; publicKey?: string }>) {
  const json = Object.fromEntries(
    Object.entries(entries).map(([name, e]) => [
      name,
      { kind: "NixCache", storeURI: e.storeURI, publicKeys: [e.publicKey ?? keys.public], signingKeys: e.sign === false ? [] : [keys.secret] },
    ]),
  );
  return parseBinaryCaches(JSON.stringify(json)).caches;
}

async function storeB(): Promise<SeparateStore> {
  const store = await createSeparateStore();
  stores.push(store);
  return store;
}

/** `nix-store --realise` in store B with only `caches` as substituters; returns the exit code and output. */
async function realiseIn(store: SeparateStore, caches: ReturnType<typeof config>, target: string) {
  return store.run("nix-store", [...substituterArgs(caches, { machineSubstituters: false }), "--realise", target]);
}

before(async () => {
  dir = await tmpRoot();
  markers = await markerDir();
  env = await nixTestEnv(dir);
  keys = await nixKeyPair(dir, "nimbus-file-1");
  otherKeys = await nixKeyPair(dir, "nimbus-other-1");
  http = await startHttpBinaryCache({ dir: path.join(dir, "http-cache") });
  fileCacheDir = path.join(dir, "file-cache");
  built = await buildPair(dir, "shared", markers, env);
  assert.equal(await buildCount(markers, "shared"), 1, "A built it once");
});

after(async () => {
  await http.close();
  for (const store of stores) await store.remove();
  await rm(dir, { recursive: true, force: true });
  await rm(markers, { recursive: true, force: true });
});

describe("separate stores", () => {
  it("a long-running process in store B sees B's /nix, and stops by its own pid", async () => {
    const b = await storeB();
    const child = b.spawn("sh", ["-c", "ls /nix/store | wc -l; exec sleep 60"], { stdio: ["ignore", "pipe", "inherit"] });
    const firstLine = await new Promise<string>((resolve) => child.stdout!.once("data", (d) => resolve(String(d).trim())));
    assert.equal(firstLine, "0", "B's store starts empty, unlike this host's");
    const exited = new Promise((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
    child.kill("SIGTERM");
    assert.equal(await exited, "SIGTERM", "the signal reached the command itself (unshare and sh exec'd it)");
  });
});

describe("two machines sharing signed caches", () => {
  let clients: BinaryCacheClient[];

  it("A pushes the .drv closure and the output closure to a file:// and an HTTP cache, only what each lacks", async () => {
    clients = openCaches(config({ files: { storeURI: `file://${fileCacheDir}?compression=zstd` }, web: { storeURI: http.url } }), { env });
    const drvResults = await pushToCaches(clients, [built.drvPath], { what: "derivations", env });
    const drvClosure = await storeClosure([built.drvPath], { env });
    assert.deepEqual(
      drvResults,
      clients.map((c) => ({ cache: c.cache, status: "pushed", pushed: drvClosure.length, alreadyPresent: 0 })),
    );
    const outResults = await pushToCaches(clients, [built.outPath], { what: "outputs", env });
    assert.deepEqual(outResults.map((r) => r.status === "pushed" && r.pushed), [2, 2], "the output and its dependency");
    for (const client of clients) {
      const { missing } = await client.missing([built.drvPath, built.outPath, built.depOutPath, ...drvClosure]);
      assert.deepEqual([...missing], [], `${client.cache} holds everything`);
    }
    // Pushing again finds everything present and uploads nothing.
    http.resetCounts();
    const again = await pushToCaches(clients, [built.outPath], { what: "outputs", env });
    assert.deepEqual(again.map((r) => r.status === "pushed" && [r.pushed, r.alreadyPresent]), [[0, 2], [0, 2]]);
    assert.equal(http.counts.PUT, 0, "nothing uploaded twice");
  });

  it("every narinfo is signed with the configured key, verifiably", async () => {
    const publicKey = parsePublicKey(keys.public);
    for (const name of (await readdir(fileCacheDir)).filter((n) => n.endsWith(".narinfo"))) {
      const info = parseNarinfo(await readFile(path.join(fileCacheDir, name), "utf8"), name);
      assert.ok(verifyFingerprint(fingerprintOf(info), info.sigs, [publicKey]), `${name} is signed`);
    }
    const drvInfo = parseNarinfo(await readFile(path.join(http.dir, `${path.basename(built.drvPath).slice(0, 32)}.narinfo`), "utf8"));
    assert.equal(drvInfo.storePath, built.drvPath, "the .drv itself is in the HTTP cache, not its outputs");
  });

  for (const which of ["files", "web"] as const) {
    it(`B substitutes the .drv and the output from the ${which === "files" ? "file://" : "HTTP"} cache and never builds it`, async () => {
      const caches = config(which === "files" ? { files: { storeURI: `file://${fileCacheDir}` } } : { web: { storeURI: http.url } });
      const b = await storeB();
      const before = await b.run("test", ["-e", built.drvPath]);
      assert.notEqual(before.code, 0, "B starts without the .drv");
      const result = await realiseIn(b, caches, built.drvPath);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), built.outPath);
      const hello = await b.run("cat", [`${built.outPath}/hello`]);
      assert.equal(hello.stdout, "hello\n");
      assert.equal((await b.run("test", ["-e", built.drvPath])).code, 0, "B has the .drv");
      assert.equal(await buildCount(markers, "shared"), 1, "B did not build it");
      assert.equal(await buildCount(markers, "shared-dep"), 1, "nor its dependency");
    });
  }

  it("B refuses paths signed by a key it does not trust", async () => {
    const caches = config({ files: { storeURI: `file://${fileCacheDir}`, publicKey: otherKeys.public, sign: false } });
    const b = await storeB();
    const result = await realiseIn(b, caches, built.outPath);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /not signed by any of the keys|no substituter|does not have a valid signature/);
    assert.notEqual((await b.run("test", ["-e", built.outPath])).code, 0, "nothing was substituted");
  });

  it("B refuses a narinfo changed after signing, and so does verifyFingerprint", async () => {
    const tampered = path.join(dir, "tampered-cache");
    await rm(tampered, { recursive: true, force: true });
    const [copyClient] = openCaches(config({ t: { storeURI: `file://${tampered}` } }), { env });
    assert.equal((await pushClosure(copyClient!, [built.depOutPath], { what: "outputs", env })).status, "pushed");
    const file = path.join(tampered, `${path.basename(built.depOutPath).slice(0, 32)}.narinfo`);
    const text = await readFile(file, "utf8");
    // Claim a reference the path does not have: the fingerprint changes, the signature no longer fits.
    const changed = text.replace(/^References: .*$/m, `References: ${path.basename(built.outPath)}`);
    await writeFile(file, changed);
    const info = parseNarinfo(changed);
    assert.equal(verifyFingerprint(fingerprintOf(info), info.sigs, [parsePublicKey(keys.public)]), false);
    const b = await storeB();
    const result = await realiseIn(b, config({ t: { storeURI: `file://${tampered}`, sign: false } }), built.depOutPath);
    assert.notEqual(result.code, 0, "Nix refuses the tampered narinfo");
    assert.notEqual((await b.run("test", ["-e", built.depOutPath])).code, 0);
  });

  it("an unreachable cache is a clear error naming it, and a failed push for that cache only", async () => {
    const gone = await startHttpBinaryCache({ dir: path.join(dir, "gone-cache") });
    await gone.close();
    const [down, up] = openCaches(config({ down: { storeURI: gone.url }, up: { storeURI: `file://${path.join(dir, "up-cache")}` } }), { env });
    await assert.rejects(down!.missing([built.outPath]), (err: unknown) => {
      assert.ok(err instanceof CacheUnreachableError);
      assert.equal(err.cache, "down");
      assert.match(err.message, /^cache "down" cannot be reached: connection refused \(http:\/\/127\.0\.0\.1:\d+\/nix-cache-info\)$/);
      return true;
    });
    const results = await pushToCaches([down!, up!], [built.outPath], { what: "outputs", env });
    assert.equal(results[0]!.status, "failed");
    assert.match(results[0]!.status === "failed" ? results[0]!.reason : "", /cache "down" cannot be reached: connection refused/);
    assert.equal(results[1]!.status, "pushed", "the other cache still gets its push");
  });

  it("a cache that rejects the upload is reported as failed for that cache, with its answer", async () => {
    const refusing = await startHttpBinaryCache({ dir: path.join(dir, "refusing-cache"), rejectWrites: "quota exceeded for this cache" });
    try {
      const [client] = openCaches(config({ refusing: { storeURI: refusing.url } }), { env });
      const result = await pushClosure(client!, [built.outPath], { what: "outputs", env });
      assert.equal(result.status, "failed");
      assert.match(result.status === "failed" ? result.reason : "", /^cache "refusing" refused the push: .*403/s);
      assert.ok(refusing.counts.PUT > 0, "Nix tried to upload");
    } finally {
      await refusing.close();
    }
  });

  it("the signing key's file lives in the agent's private directory only while Nix copies", async () => {
    const privateDir = path.join(dir, "private");
    await mkdir(privateDir, { mode: 0o700 });
    const [client] = openCaches(config({ k: { storeURI: `file://${path.join(dir, "k-cache")}` } }), { env, privateDir });
    assert.equal((await pushClosure(client!, [built.depOutPath], { what: "outputs", env })).status, "pushed");
    assert.deepEqual(await readdir(privateDir), [], "the key file and its directory are gone");
  });
});
