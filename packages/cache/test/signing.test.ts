import assert from "node:assert/strict";
import { readFile, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  decodeNixBase32,
  encodeNixBase32,
  fingerprintOf,
  generateSecretKey,
  parseNarinfo,
  parsePublicKey,
  parseSecretKey,
  signFingerprint,
  verifyFingerprint,
} from "../src/index.ts";
import { buildPair, markerDir, NIX, nixKeyPair, nixTestEnv, OFFLINE, run, tmpRoot } from "./nix-fixtures.ts";

let dir: string;
before(async () => {
  dir = await tmpRoot();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("Nix base32", () => {
  it("matches the hashes Nix prints (nix-hash --to-base32)", async () => {
    for (const hex of ["00", "ff".repeat(32), "0123456789abcdef".repeat(4), "8a".repeat(20)]) {
      const expected = (await run("nix-hash", ["--type", hex.length === 40 ? "sha1" : "sha256", "--to-base32", hex.padEnd(hex.length === 40 ? 40 : 64, "0")])).trim();
      const bytes = Buffer.from(hex.padEnd(hex.length === 40 ? 40 : 64, "0"), "hex");
      assert.equal(encodeNixBase32(bytes), expected, hex);
      assert.deepEqual(Buffer.from(decodeNixBase32(expected, bytes.length)), bytes);
    }
  });

  it("refuses a wrong length, a foreign character and an out-of-range value", () => {
    assert.throws(() => decodeNixBase32("abc", 32), /expected 52 Nix base32 characters, got 3/);
    assert.throws(() => decodeNixBase32("e".repeat(52), 32), /"e" is not a Nix base32 character/);
    assert.throws(() => decodeNixBase32("z".repeat(52), 32), /out of range/);
  });
});

describe("keys", () => {
  it("reads the keys nix-store --generate-binary-cache-key writes", async () => {
    const pair = await nixKeyPair(dir, "nimbus-test-1");
    const secret = parseSecretKey(pair.secret);
    assert.equal(secret.name, "nimbus-test-1");
    assert.equal(secret.publicKey.text, parsePublicKey(pair.public).text);
    assert.equal(secret.text, pair.secret.trim());
  });

  it("names what is wrong with a bad key", () => {
    assert.throws(() => parsePublicKey("no-colon"), /must look like "<name>:<base64>"/);
    assert.throws(() => parsePublicKey("k:AAAA"), /has 3 bytes; an ed25519 public key has 32/);
    assert.throws(() => parsePublicKey("k:not base64!"), /is not base64/);
    assert.throws(() => parseSecretKey(`k:${Buffer.alloc(32).toString("base64")}`), /has 32 bytes; a Nix ed25519 secret key has 64/);
    const good = generateSecretKey("k");
    const bytes = Buffer.from(good.text.slice(2), "base64");
    bytes[40] = bytes[40]! ^ 1;
    assert.throws(() => parseSecretKey(`k:${bytes.toString("base64")}`), /corrupt: its public half does not belong to its seed/);
  });

  it("accepts Cachix's bare base64 secret key with the implied name", () => {
    const key = generateSecretKey("mycache.cachix.org-1");
    const bare = key.text.slice(key.text.indexOf(":") + 1);
    assert.equal(parseSecretKey(bare, "mycache.cachix.org-1").publicKey.text, key.publicKey.text);
  });
});

describe("signatures", () => {
  it("signs exactly as `nix copy --to file://…?secret-key=` does, and verifies Nix's signatures", async () => {
    const env = await nixTestEnv(dir);
    const pair = await nixKeyPair(dir, "nimbus-sign-1");
    const built = await buildPair(dir, "sign", await markerDir(), env);
    const cache = path.join(dir, "signed-cache");
    await run("nix", [...NIX, ...OFFLINE, "copy", "--to", `file://${cache}?secret-key=${pair.secretFile}`, built.outPath], { env });
    await run("nix", [...NIX, ...OFFLINE, "copy", "--derivation", "--to", `file://${cache}?secret-key=${pair.secretFile}`, built.drvPath], { env });
    const names = (await readdir(cache)).filter((n) => n.endsWith(".narinfo"));
    assert.ok(names.length >= 4, `outputs and derivations were copied: ${names.join(", ")}`);
    const secret = parseSecretKey(pair.secret);
    const publicKey = parsePublicKey(pair.public);
    const other = generateSecretKey("nimbus-sign-1");
    for (const name of names) {
      const info = parseNarinfo(await readFile(path.join(cache, name), "utf8"), name);
      const fingerprint = fingerprintOf(info);
      assert.equal(info.sigs.length, 1);
      // ed25519 is deterministic: the same key signs the same fingerprint identically.
      assert.equal(signFingerprint(secret, fingerprint), info.sigs[0], `${name}: our signature equals Nix's`);
      assert.equal(verifyFingerprint(fingerprint, info.sigs, [publicKey]), true, `${name}: Nix's signature verifies`);
      assert.equal(verifyFingerprint(fingerprint, info.sigs, [other.publicKey]), false, "another key with the same name does not verify it");
      assert.equal(verifyFingerprint(`${fingerprint}x`, info.sigs, [publicKey]), false, "a changed fingerprint does not verify");
    }
  });
});
