import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CacheConfigError, generateSecretKey, loadBinaryCaches, parseBinaryCaches, publicView } from "../src/index.ts";

const nixKey = generateSecretKey("cache.example.com-1");
const cachixKey = generateSecretKey("mycache.cachix.org-1");
const cachixBare = cachixKey.text.slice(cachixKey.text.indexOf(":") + 1);
const atticKey = generateSecretKey("attic-1");
const SECRETS = ["cachix-auth-token-secret", "attic-token-secret", nixKey.text, cachixBare];

const GOOD = {
  local: { kind: "NixCache", storeURI: "file:///var/cache/nix?compression=zstd", publicKeys: [nixKey.publicKey.text], signingKeys: [nixKey.text] },
  readonly: { kind: "NixCache", storeURI: "https://cache.example.com", publicKeys: [nixKey.publicKey.text], signingKeys: [] },
  mycache: { kind: "CachixCache", publicKeys: [cachixKey.publicKey.text], signingKeys: [cachixBare], authToken: "cachix-auth-token-secret" },
  team: { kind: "AtticCache", endpoint: "https://attic.example.com", cache: "team", token: "attic-token-secret", publicKeys: [atticKey.publicKey.text] },
};

function problems(json: unknown): string[] {
  try {
    parseBinaryCaches(JSON.stringify(json));
  } catch (err) {
    assert.ok(err instanceof CacheConfigError, String(err));
    return [...err.problems];
  }
  assert.fail("expected a CacheConfigError");
}

describe("binary-caches.json", () => {
  it("reads every kind, with push decided by what pushing needs", () => {
    const { caches, warnings } = parseBinaryCaches(JSON.stringify(GOOD));
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      caches.map((c) => [c.name, c.kind, c.push]),
      [
        ["local", "NixCache", true],
        ["readonly", "NixCache", false],
        ["mycache", "CachixCache", true],
        ["team", "AtticCache", true],
      ],
    );
    const local = caches[0]!;
    assert.ok(local.kind === "NixCache" && local.store.directory === "/var/cache/nix");
    const cachix = caches[2]!;
    assert.equal(cachix.signingKey?.name, "mycache.cachix.org-1", "Cachix's bare key gets the implied name");
    const team = caches[3]!;
    assert.ok(team.kind === "AtticCache" && team.endpoint === "https://attic.example.com/");
  });

  it("publicView carries names, kinds, public keys and push/pull — no token or signing key", () => {
    const view = publicView(parseBinaryCaches(JSON.stringify(GOOD)));
    assert.deepEqual(view[0], { name: "local", kind: "NixCache", publicKeys: [nixKey.publicKey.text], push: true, pull: true });
    const text = JSON.stringify(view);
    for (const secret of SECRETS) assert.ok(!text.includes(secret), `publicView leaks ${secret.slice(0, 12)}…`);
    // The seed alone (the secret's first half) must not appear either.
    assert.ok(!text.includes(Buffer.from(nixKey.seed).toString("base64").slice(0, 20)));
  });

  it("warns about and skips an unknown kind, as Hercules does", () => {
    const { caches, warnings } = parseBinaryCaches(JSON.stringify({ ...GOOD, future: { kind: "FutureCache", x: 1 } }));
    assert.equal(caches.length, 4);
    assert.deepEqual(warnings, ['binary-caches.json: cache "future": unknown kind "FutureCache" — this cache is ignored (known kinds: NixCache, CachixCache, AtticCache)']);
  });

  it("refuses s3:// with the reason and what to do", () => {
    const [problem] = problems({ s3: { kind: "NixCache", storeURI: "s3://bucket?region=eu-west-1", publicKeys: [nixKey.publicKey.text] } });
    assert.match(problem!, /^binary-caches.json: cache "s3": "storeURI" this Nix \(2\.8\) cannot open s3:\/\/ stores — .*https:\/\//);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ["invalid JSON", "{", /invalid JSON/],
    ["an array", [], /must be a JSON object from cache names/],
    ["a bad cache name", { "a b": GOOD.local }, /cache "a b": a cache name must be/],
    ["a cache without kind", { x: { storeURI: "file:///x" } }, /cache "x": missing "kind"/],
    ["a missing storeURI", { x: { kind: "NixCache", publicKeys: [nixKey.publicKey.text] } }, /cache "x": "storeURI" is missing/],
    ["a typo'd key", { x: { ...GOOD.local, signingkeys: [] } }, /cache "x": "signingkeys" is not a NixCache key/],
    ["a bad public key", { x: { ...GOOD.local, publicKeys: ["nope"] } }, /cache "x": "publicKeys\[0\]" is not a public key/],
    ["no public keys", { x: { ...GOOD.readonly, publicKeys: [] } }, /cache "x": "publicKeys" must list at least one key/],
    ["a bad signing key", { x: { ...GOOD.local, signingKeys: ["k:AAAA"] } }, /cache "x": "signingKeys\[0\]" is not a secret key: .*has 3 bytes/],
    ["two signing keys", { x: { ...GOOD.local, signingKeys: [nixKey.text, nixKey.text] } }, /"signingKeys" may hold one key/],
    ["a signing key not among the public keys", { x: { ...GOOD.local, publicKeys: [atticKey.publicKey.text] } }, /"signingKeys\[0\]" does not match any of "publicKeys"/],
    ["an unsupported scheme", { x: { ...GOOD.local, storeURI: "ssh://host" } }, /"storeURI" uses ssh:\/\/, which Nimbus cannot use/],
    ["a secret-key in the URI", { x: { ...GOOD.local, storeURI: "file:///c?secret-key=/k" } }, /must not carry \?secret-key=/],
    ["credentials in the URI", { x: { ...GOOD.readonly, storeURI: "https://u:p@cache.example.com" } }, /must not carry a user name or password/],
    ["a relative file URI", { x: { ...GOOD.local, storeURI: "file://relative/dir" } }, /must be file:\/\/\/absolute\/path/],
    ["an empty Cachix token", { x: { ...GOOD.mycache, authToken: "" } }, /"authToken" must be a non-empty string/],
    ["an Attic endpoint that is not http(s)", { x: { ...GOOD.team, endpoint: "ftp://x" } }, /"endpoint" must be the Attic server's http/],
    ["a missing Attic cache name", { x: { kind: "AtticCache", endpoint: "https://a", publicKeys: [atticKey.publicKey.text] } }, /"cache" is missing/],
  ];
  for (const [what, json, message] of cases) {
    it(`names the cache and key for ${what}`, () => {
      const list = typeof json === "string" ? (() => {
        try {
          parseBinaryCaches(json);
        } catch (err) {
          return [...(err as CacheConfigError).problems];
        }
        return [];
      })() : problems(json);
      assert.ok(list.some((p) => message.test(p)), `${message} in:\n${list.join("\n")}`);
    });
  }

  it("reports every problem at once", () => {
    const list = problems({ a: { kind: "NixCache" }, b: { kind: "AtticCache" } });
    assert.ok(list.length >= 4, list.join("\n"));
  });

  describe("loadBinaryCaches", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-caches-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("refuses a file with secrets that other users can read", async () => {
      const file = path.join(dir, "open.json");
      await writeFile(file, JSON.stringify(GOOD));
      await chmod(file, 0o644);
      await assert.rejects(loadBinaryCaches(file), /readable by other users \(mode 0644\).*chmod 600/);
      await chmod(file, 0o600);
      assert.equal((await loadBinaryCaches(file)).caches.length, 4);
    });

    it("accepts a world-readable file without secrets", async () => {
      const file = path.join(dir, "public.json");
      await writeFile(file, JSON.stringify({ readonly: GOOD.readonly }), { mode: 0o644 });
      assert.equal((await loadBinaryCaches(file)).caches.length, 1);
    });

    it("says where a missing file was expected", async () => {
      await assert.rejects(loadBinaryCaches(path.join(dir, "none.json")), /none\.json: no such file \(binaryCachesPath in agent\.toml/);
    });
  });
});
