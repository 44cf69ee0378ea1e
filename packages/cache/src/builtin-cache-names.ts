/**
 * Names shared by the agent and the service for the built-in cache (docs/cache.md): where NAR
 * files live in the bucket, and the read credential an agent derives from its session.
 */
import { createHash, createHmac } from "node:crypto";
import { parseSha256 } from "./nar-hash.ts";
import { encodeNixBase32 } from "./nix-base32.ts";

const EXTENSIONS: Record<string, string> = { none: "", zstd: ".zst", xz: ".xz", bzip2: ".bz2", br: ".br" };

/** `nar/<base32 file hash>.nar<.ext>`, as Nix names NAR files: the name says what the bytes hash to. */
export function narFileKey(fileHash: string, compression: string): string {
  const extension = EXTENSIONS[compression];
  if (extension === undefined) throw new Error(`unknown compression ${JSON.stringify(compression)}`);
  return `nar/${encodeNixBase32(parseSha256(fileHash))}.nar${extension}`;
}

const NAR_FILE = /^nar\/([0-9abcdfghijklmnpqrsvwxyz]{52})\.nar(\.zst|\.xz|\.bz2|\.br)?$/;

/** The file hash and compression a NAR file key names, or undefined for anything else. */
export function parseNarFileKey(key: string): { fileHash: string; compression: string } | undefined {
  const match = NAR_FILE.exec(key);
  if (!match) return undefined;
  const compression = Object.entries(EXTENSIONS).find(([, ext]) => ext === (match[2] ?? ""))![0];
  return { fileHash: `sha256:${match[1]}`, compression };
}

/**
 * An agent's read credential for the built-in cache: derived from its session secret's SHA-256,
 * which is what the service stores, so the service can check it without keeping anything more
 * and the agent's netrc never holds the session secret itself. It reads the cache, nothing else,
 * and stops working when the session ends.
 */
export function sessionCacheKey(sessionSecretHashHex: string): string {
  return createHmac("sha256", Buffer.from(sessionSecretHashHex, "hex")).update("nimbus built-in cache: read").digest("base64url");
}

/** The same key computed from the secret itself (the agent's side). */
export function sessionCacheKeyFromSecret(sessionSecret: string): string {
  return sessionCacheKey(createHash("sha256").update(sessionSecret).digest("hex"));
}
