import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import {
  formatNetrc,
  generateSecretKey,
  netrcCredentials,
  netrcFor,
  parseBinaryCaches,
  parseNetrc,
  substituterArgs,
  substituterSettings,
  writePrivateNetrc,
} from "../src/index.ts";

const key = generateSecretKey("k-1");
const { caches } = parseBinaryCaches(
  JSON.stringify({
    files: { kind: "NixCache", storeURI: "file:///var/cache/nix", publicKeys: [key.publicKey.text] },
    mycache: { kind: "CachixCache", publicKeys: ["mycache.cachix.org-1:" + Buffer.alloc(32, 1).toString("base64")], authToken: "cachix-token" },
    team: { kind: "AtticCache", endpoint: "https://attic.example.com/", cache: "team", token: "attic-token", publicKeys: [key.publicKey.text] },
  }),
);

describe("substituter settings", () => {
  it("adds every configured cache to the machine's substituters and trusts their keys", () => {
    assert.deepEqual(substituterSettings(caches), [
      ["extra-substituters", "file:///var/cache/nix https://mycache.cachix.org https://attic.example.com/team"],
      ["extra-trusted-public-keys", `${key.publicKey.text} mycache.cachix.org-1:${Buffer.alloc(32, 1).toString("base64")}`],
    ]);
  });

  it("turns the machine's substituters off first when asked, and points Nix at the netrc", () => {
    const args = substituterArgs(caches.slice(0, 1), { machineSubstituters: false, netrcFile: "/private/netrc" });
    assert.deepEqual(args, [
      "--option", "substituters", "",
      "--option", "extra-substituters", "file:///var/cache/nix",
      "--option", "extra-trusted-public-keys", key.publicKey.text,
      "--option", "netrc-file", "/private/netrc",
    ]);
  });

  it("with no caches and the machine's off, Nix substitutes from nothing", () => {
    assert.deepEqual(substituterArgs([], { machineSubstituters: false }), ["--option", "substituters", ""]);
  });
});

describe("netrc", () => {
  it("has Hercules' Cachix line and Attic's token, after the machine's own entries", () => {
    const text = netrcFor(caches, {}, "machine private.example.com login me password pw\n");
    assert.equal(
      text,
      "machine private.example.com login me password pw\n" +
        "machine mycache.cachix.org login authtoken password cachix-token\n" +
        "machine attic.example.com login attic password attic-token\n",
    );
    const entries = parseNetrc(text);
    assert.deepEqual(netrcCredentials(entries, "attic.example.com"), { login: "attic", password: "attic-token" });
    assert.equal(netrcCredentials(entries, "other.example.com"), undefined);
  });

  it("parses default entries, comments, multi-line entries and macdefs", () => {
    const entries = parseNetrc("# comment\nmachine a.example\n  login x\n  password y\nmacdef init\ncd /\n\ndefault login anon password z\n");
    assert.deepEqual(netrcCredentials(entries, "a.example"), { login: "x", password: "y" });
    assert.deepEqual(netrcCredentials(entries, "b.example"), { login: "anon", password: "z" });
  });

  it("refuses values that would change the file's meaning", () => {
    assert.throws(() => formatNetrc([{ machine: "h", password: "a b" }]), /must not contain spaces/);
    assert.throws(() => formatNetrc([{ machine: "h", password: "x\nmachine evil" }]), /must not contain spaces/);
  });

  it("is written 0600 in a 0700 directory", async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), "nimbus-netrc-"));
    try {
      const file = await writePrivateNetrc(path.join(parent, "secrets"), netrcFor(caches));
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
      assert.match(await readFile(file, "utf8"), /password cachix-token/);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});
