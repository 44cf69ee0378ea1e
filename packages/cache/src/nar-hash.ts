/**
 * SHA-256 hashes in the three spellings Nix uses: `sha256:<base32>` (narinfo), `sha256-<base64>`
 * (SRI, `nix path-info --json`) and hexadecimal (Attic's upload API, Cachix's FileHash).
 */
import { decodeNixBase32, encodeNixBase32 } from "./nix-base32.ts";

const SHA256_BYTES = 32;

/** Reads `sha256:<base32|hex>` or `sha256-<base64>` into the 32 digest bytes. */
export function parseSha256(text: string): Uint8Array {
  if (text.startsWith("sha256-")) {
    const bytes = Buffer.from(text.slice("sha256-".length), "base64");
    if (bytes.length !== SHA256_BYTES) throw new Error(`${JSON.stringify(text)} is not a SHA-256 SRI hash`);
    return new Uint8Array(bytes);
  }
  if (!text.startsWith("sha256:")) throw new Error(`${JSON.stringify(text)} is not a sha256 hash`);
  const value = text.slice("sha256:".length);
  if (/^[0-9a-f]{64}$/.test(value)) return new Uint8Array(Buffer.from(value, "hex"));
  return decodeNixBase32(value, SHA256_BYTES);
}

export function sha256NixBase32(digest: Uint8Array): string {
  return `sha256:${encodeNixBase32(digest)}`;
}

export function sha256Hex(digest: Uint8Array): string {
  return Buffer.from(digest).toString("hex");
}
