import { createHash } from "node:crypto";
import { NIX_BASE32_CHARS } from "@nimbus/cache";

/** A store-path hash (32 characters of Nix's alphabet) made from a text, so generated graphs look like Nix's and repeat from their seed. */
export function storeHashOf(text: string): string {
  const bytes = createHash("sha256").update(text).digest();
  let out = "";
  for (let i = 0; i < 32; i++) out += NIX_BASE32_CHARS[bytes[i]! % 32];
  return out;
}

