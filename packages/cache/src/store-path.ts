/** Store paths as Nix writes them: `/nix/store/<32 base32 characters>-<name>`. */
import { z } from "zod";
import { NIX_BASE32_CHARS } from "./nix-base32.ts";

export const STORE_DIR = "/nix/store";

/** Nix's rule for the name part: at most 211 characters from this set, not starting with a dot. */
const STORE_PATH = new RegExp(`^${STORE_DIR}/([${NIX_BASE32_CHARS}]{32})-([A-Za-z0-9+\\-_?=][A-Za-z0-9+\\-._?=]{0,210})$`);
const STORE_HASH = new RegExp(`^[${NIX_BASE32_CHARS}]{32}$`);

export function isStorePath(text: string): boolean {
  return STORE_PATH.test(text);
}

/** The 32-character hash part, which names the path's narinfo (`<hash>.narinfo`). */
export function storePathHash(storePath: string): string {
  const match = STORE_PATH.exec(storePath);
  if (!match) throw new Error(`${JSON.stringify(storePath)} is not a store path under ${STORE_DIR}`);
  return match[1]!;
}

/** `<hash>-<name>`, as narinfo References list them. */
export function storePathBaseName(storePath: string): string {
  storePathHash(storePath);
  return storePath.slice(STORE_DIR.length + 1);
}

export function isStorePathHash(text: string): boolean {
  return STORE_HASH.test(text);
}

export const StorePath = z.string().refine(isStorePath, { message: `a store path such as ${STORE_DIR}/<32 base32 characters>-<name>` });
export type StorePath = z.infer<typeof StorePath>;
