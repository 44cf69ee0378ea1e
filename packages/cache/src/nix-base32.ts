/**
 * Nix's base32: its own alphabet (no e, o, u, t) and its own bit order (the last character
 * holds the first bits), as store path hashes, NarHash and FileHash use it.
 */

const ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function nixBase32Length(byteLength: number): number {
  return Math.ceil((byteLength * 8) / 5);
}

export function encodeNixBase32(bytes: Uint8Array): string {
  const length = nixBase32Length(bytes.length);
  let out = "";
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = Math.floor(bit / 8);
    const j = bit % 8;
    const low = bytes[i]! >> j;
    const high = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    out += ALPHABET[(low | high) & 0x1f];
  }
  return out;
}

/** The bytes of a Nix base32 string of `byteLength` bytes; throws on a wrong length or character. */
export function decodeNixBase32(text: string, byteLength: number): Uint8Array {
  if (text.length !== nixBase32Length(byteLength)) {
    throw new Error(`expected ${nixBase32Length(byteLength)} Nix base32 characters, got ${text.length}`);
  }
  const bytes = new Uint8Array(byteLength);
  for (let n = 0; n < text.length; n++) {
    const c = text[text.length - n - 1]!;
    const digit = VALUE.get(c);
    if (digit === undefined) throw new Error(`"${c}" is not a Nix base32 character`);
    const bit = n * 5;
    const i = Math.floor(bit / 8);
    const j = bit % 8;
    bytes[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i + 1 < byteLength) bytes[i + 1]! |= carry;
    else if (carry !== 0) throw new Error("Nix base32 value out of range");
  }
  return bytes;
}

export const NIX_BASE32_CHARS = ALPHABET;
