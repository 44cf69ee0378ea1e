/** Bulk presence for every kind, against real HTTP servers (the stand-ins), with fake paths. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  atticPresence,
  CacheMissingRequest,
  CacheUnreachableError,
  cachixApiBase,
  cachixPresence,
  encodeNixBase32,
  filePresence,
  formatNarinfo,
  generateSecretKey,
  httpPresence,
  missingEverywhere,
  nimbusPresence,
  openCaches,
  parseBinaryCaches,
  storePathHash,
} from "../src/index.ts";
import { startAtticStandin, type AtticStandin } from "../../../test/support/attic-standin.ts";
import { startCachixStandin, type CachixStandin } from "../../../test/support/cachix-standin.ts";
import { startHttpBinaryCache, type HttpBinaryCache } from "../../../test/support/http-binary-cache.ts";
import { tmpRoot } from "./nix-fixtures.ts";

function fakePath(i: number): string {
  return `/nix/store/${encodeNixBase32(randomBytes(20))}-fake-${i}`;
}

function narinfoFor(storePath: string): string {
  return formatNarinfo({
    storePath,
    url: "nar/x.nar",
    compression: "none",
    narHash: `sha256:${encodeNixBase32(randomBytes(32))}`,
    narSize: 1,
    references: [],
    sigs: [],
  });
}

const present = Array.from({ length: 30 }, (_, i) => fakePath(i));
const absent = Array.from({ length: 20 }, (_, i) => fakePath(100 + i));
const all = [...present, ...absent].sort();

let dir: string;
let http: HttpBinaryCache;
let cachix: CachixStandin;
let attic: AtticStandin;

before(async () => {
  dir = await tmpRoot();
  await mkdir(path.join(dir, "files"));
  for (const p of present) await writeFile(path.join(dir, "files", `${storePathHash(p)}.narinfo`), narinfoFor(p));
  http = await startHttpBinaryCache({ dir: path.join(dir, "files") });
  cachix = await startCachixStandin({ mycache: { token: "cachix-token", private: false } });
  attic = await startAtticStandin({ team: { signingKey: generateSecretKey("attic-1") } }, { "attic-token": { pull: ["team"], push: ["team"] }, "read-only": { pull: ["team"], push: [] } });
  for (const p of present) {
    cachix.caches.get("mycache")!.narinfos.set(storePathHash(p), narinfoFor(p));
    attic.caches.get("team")!.narinfos.set(storePathHash(p), narinfoFor(p));
  }
});

after(async () => {
  await Promise.all([http.close(), cachix.close(), attic.close()]);
  await rm(dir, { recursive: true, force: true });
});

function assertSplit(missing: Set<string>) {
  assert.deepEqual([...missing].sort(), [...absent].sort());
}

describe("bulk presence", () => {
  it("file://: one directory listing", async () => {
    assertSplit((await filePresence("files", path.join(dir, "files")).missing(all)).missing);
    assert.deepEqual([...(await filePresence("new", path.join(dir, "not-yet")).missing(present)).missing].sort(), [...present].sort(), "a cache not created yet lacks everything");
  });

  it("HTTP: nix-cache-info, then one HEAD per narinfo", async () => {
    http.resetCounts();
    const result = await httpPresence("web", http.url).missing(all);
    assertSplit(result.missing);
    assert.equal(result.failed.size, 0);
    assert.equal(http.counts.GET, 1, "nix-cache-info");
    assert.equal(http.counts.HEAD, all.length, "one HEAD per path, never a GET of the narinfo");
  });

  it("HTTP: with credentials, and a clear error when they are refused", async () => {
    http.set({ password: "s3cret" });
    try {
      assertSplit((await httpPresence("web", http.url, { credentials: { login: "x", password: "s3cret" } }).missing(all)).missing);
      await assert.rejects(httpPresence("web", http.url, { credentials: { login: "x", password: "wrong" } }).missing(all), /cache "web" cannot be reached: HTTP 401 .*check the credentials/);
    } finally {
      http.set({ password: undefined });
    }
  });

  it("HTTP: a path whose lookup keeps failing is missing and reported, the others are answered", async () => {
    const flaky = createServer((req, res) => {
      if (req.url === "/nix-cache-info") return void res.end("StoreDir: /nix/store\n");
      if (req.url === `/${storePathHash(present[0]!)}.narinfo`) return void res.writeHead(502).end();
      res.writeHead(present.some((p) => req.url === `/${storePathHash(p)}.narinfo`) ? 200 : 404).end();
    });
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", r));
    try {
      const result = await httpPresence("flaky", `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`).missing(all);
      assert.deepEqual([...result.failed], [[present[0], "HTTP 502"]]);
      assert.deepEqual([...result.missing].sort(), [...absent, present[0]!].sort());
    } finally {
      flaky.close();
    }
  });

  it("Cachix: one POST /api/v1/cache/{name}/narinfo", async () => {
    cachix.counts.clear();
    assertSplit((await cachixPresence("mycache", cachixApiBase({ cachixApiUrl: cachix.url }), "cachix-token").missing(all)).missing);
    assert.deepEqual(Object.fromEntries(cachix.counts), { bulk: 1 });
  });

  it("Attic: one POST /_api/v1/get-missing-paths", async () => {
    attic.counts.clear();
    assertSplit((await atticPresence("team", `${attic.url}/`, "team", "attic-token").missing(all)).missing);
    assert.deepEqual(Object.fromEntries(attic.counts), { missing: 1 });
  });

  it("Attic: a token without push permission is refused with Attic's words", async () => {
    await assert.rejects(atticPresence("team", `${attic.url}/`, "team", "read-only").missing(all), /cache "team" cannot be reached: HTTP 401: Unauthorized: Unauthorized\. — check the cache's token/);
  });

  it("Nimbus: POST /cache/missing with the session's Authorization", async () => {
    const seen: unknown[] = [];
    const service = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.url !== "/cache/missing" || req.headers.authorization !== "Bearer session-x") return void res.writeHead(401).end('{"message":"unauthorized"}');
      const body = CacheMissingRequest.parse(JSON.parse(Buffer.concat(chunks).toString()));
      seen.push(body);
      res.setHeader("content-type", "application/json");
      // A path not asked about is ignored by the client.
      res.end(JSON.stringify({ missing: [...body.storePaths.filter((p) => absent.includes(p)), fakePath(999)] }));
    });
    await new Promise<void>((r) => service.listen(0, "127.0.0.1", r));
    const apiBaseUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
    try {
      assertSplit((await nimbusPresence({ apiBaseUrl, authorization: () => "Bearer session-x" }).missing(all)).missing);
      assert.equal(seen.length, 1, "one request");
      await assert.rejects(nimbusPresence({ apiBaseUrl, authorization: () => "Bearer wrong" }).missing(all), /cache "nimbus" cannot be reached: HTTP 401: unauthorized/);
    } finally {
      service.close();
    }
  });

  it("an unreachable cache of every kind is a CacheUnreachableError naming the cache", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((r) => closed.close(r));
    const clients = [
      httpPresence("h", url),
      cachixPresence("c", cachixApiBase({ cachixApiUrl: url }), "t"),
      atticPresence("a", `${url}/`, "team", "t"),
      nimbusPresence({ apiBaseUrl: url, authorization: () => "x", cache: "n" }),
    ];
    for (const client of clients) {
      await assert.rejects(client.missing(all), (err: unknown) => {
        assert.ok(err instanceof CacheUnreachableError, String(err));
        assert.equal(err.cache, client.cache);
        assert.match(err.message, new RegExp(`^cache "${client.cache}" cannot be reached: connection refused`));
        return true;
      });
    }
  });

  it("missingEverywhere: a path is missing only if no reachable cache has it; unreachable caches are listed", async () => {
    const secret = generateSecretKey("k-1");
    const { caches } = parseBinaryCaches(
      JSON.stringify({
        web: { kind: "NixCache", storeURI: http.url, publicKeys: [secret.publicKey.text] },
        down: { kind: "NixCache", storeURI: "http://127.0.0.1:9", publicKeys: [secret.publicKey.text] },
        mycache: { kind: "CachixCache", publicKeys: [secret.publicKey.text], authToken: "cachix-token" },
      }),
    );
    const clients = openCaches(caches, { services: { cachixApiUrl: cachix.url } });
    // Cachix has one more path than the HTTP cache.
    cachix.caches.get("mycache")!.narinfos.set(storePathHash(absent[0]!), narinfoFor(absent[0]!));
    try {
      const result = await missingEverywhere(clients, all);
      assert.deepEqual([...result.missing].sort(), absent.slice(1).sort());
      assert.deepEqual(result.unreachable.map((e) => e.cache), ["down"]);
    } finally {
      cachix.caches.get("mycache")!.narinfos.delete(storePathHash(absent[0]!));
    }
  });

  it("refuses a path outside /nix/store before asking anything", async () => {
    await assert.rejects(filePresence("f", dir).missing(["/tmp/evil"]), /"\/tmp\/evil" is not a store path under \/nix\/store/);
  });
});
