/**
 * Nix's binary cache keys and signatures. Keys are `<name>:<base64>`: a public key is the
 * 32-byte ed25519 key, a secret key the 64-byte ed25519 secret (seed then public key), as
 * `nix-store --generate-binary-cache-key` writes them. A narinfo signature signs its fingerprint.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";

export interface PublicKey {
  name: string;
  /** 32 bytes. */
  key: Uint8Array;
  /** The `name:base64` text. */
  text: string;
}

export interface SecretKey {
  name: string;
  /** The 32-byte seed. */
  seed: Uint8Array;
  publicKey: PublicKey;
  /** The `name:base64` text (64 bytes), as Nix's `secret-key` files hold it. */
  text: string;
}

export class NixKeyError extends Error {
  override readonly name = "NixKeyError";
}

const NAME = /^[^\s:]+$/;

function splitKey(text: string, what: string): { name: string; bytes: Buffer } {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new NixKeyError(`a ${what} must look like "<name>:<base64>"`);
  const name = text.slice(0, colon);
  const data = text.slice(colon + 1);
  if (!NAME.test(name)) throw new NixKeyError(`the ${what}'s name must not contain spaces or colons`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) throw new NixKeyError(`the ${what} after "${name}:" is not base64`);
  return { name, bytes: Buffer.from(data, "base64") };
}

export function parsePublicKey(text: string): PublicKey {
  const { name, bytes } = splitKey(text.trim(), "public key");
  if (bytes.length !== 32) throw new NixKeyError(`the public key "${name}" has ${bytes.length} bytes; an ed25519 public key has 32`);
  return { name, key: new Uint8Array(bytes), text: `${name}:${bytes.toString("base64")}` };
}

/**
 * Parses a secret key. `impliedName` allows the bare base64 form Cachix prints
 * (its key name is `<cache>.cachix.org-1`).
 */
export function parseSecretKey(text: string, impliedName?: string): SecretKey {
  const trimmed = text.trim();
  const { name, bytes } =
    impliedName !== undefined && !trimmed.includes(":")
      ? { name: impliedName, bytes: Buffer.from(trimmed, "base64") }
      : splitKey(trimmed, "secret key");
  if (bytes.length !== 64) throw new NixKeyError(`the secret key "${name}" has ${bytes.length} bytes; a Nix ed25519 secret key has 64`);
  const seed = new Uint8Array(bytes.subarray(0, 32));
  const publicBytes = new Uint8Array(bytes.subarray(32));
  // The stored public half must be the seed's: otherwise signatures would not verify.
  const derived = derivePublicKey(seed);
  if (!Buffer.from(derived).equals(Buffer.from(publicBytes))) {
    throw new NixKeyError(`the secret key "${name}" is corrupt: its public half does not belong to its seed`);
  }
  return {
    name,
    seed,
    publicKey: { name, key: publicBytes, text: `${name}:${Buffer.from(publicBytes).toString("base64")}` },
    text: `${name}:${bytes.toString("base64")}`,
  };
}

/** A new key pair, as `nix-store --generate-binary-cache-key` makes. */
export function generateSecretKey(name: string): SecretKey {
  if (!NAME.test(name)) throw new NixKeyError("a key name must not contain spaces or colons");
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d!, "base64url");
  const pub = Buffer.from(jwk.x!, "base64url");
  return parseSecretKey(`${name}:${Buffer.concat([seed, pub]).toString("base64")}`);
}

/** `1;<storePath>;<narHash>;<narSize>;<comma-separated full reference paths>`: what a narinfo's Sig signs. */
export function narinfoFingerprint(info: { storePath: string; narHash: string; narSize: number; references: readonly string[] }): string {
  if (!info.narHash.startsWith("sha256:") || info.narHash.length !== "sha256:".length + 52) {
    throw new Error(`a fingerprint needs NarHash as sha256:<base32>, got ${JSON.stringify(info.narHash)}`);
  }
  return `1;${info.storePath};${info.narHash};${info.narSize};${[...info.references].sort().join(",")}`;
}

/** `<keyname>:<base64 signature>`, a narinfo `Sig` value. */
export function signFingerprint(key: SecretKey, fingerprint: string): string {
  const signature = sign(null, Buffer.from(fingerprint, "utf8"), privateKeyObject(key));
  return `${key.name}:${signature.toString("base64")}`;
}

/** Whether one of `sigs` is a valid signature of `fingerprint` by one of `keys` (Nix's rule). */
export function verifyFingerprint(fingerprint: string, sigs: readonly string[], keys: readonly PublicKey[]): boolean {
  for (const sig of sigs) {
    const colon = sig.indexOf(":");
    if (colon <= 0) continue;
    const name = sig.slice(0, colon);
    const signature = Buffer.from(sig.slice(colon + 1), "base64");
    if (signature.length !== 64) continue;
    for (const key of keys) {
      if (key.name === name && verify(null, Buffer.from(fingerprint, "utf8"), publicKeyObject(key.key), signature)) return true;
    }
  }
  return false;
}

function derivePublicKey(seed: Uint8Array): Uint8Array {
  const jwk = createPublicKey(privateKeyFromSeed(seed)).export({ format: "jwk" });
  return new Uint8Array(Buffer.from(jwk.x!, "base64url"));
}

function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  // PKCS#8 for ed25519: a fixed 16-byte prefix, then the 32-byte seed.
  const prefix = Buffer.from("302e020100300506032b657004220420", "hex");
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: "der", type: "pkcs8" });
}

function privateKeyObject(key: SecretKey): KeyObject {
  return privateKeyFromSeed(key.seed);
}

function publicKeyObject(key: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(key).toString("base64url") }, format: "jwk" });
}
