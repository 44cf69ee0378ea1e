/**
 * A job's derivation list is sorted by store path, i.e. by Nix store hash, and those hashes are
 * uniform: the rows whose hash lies in the k-th of n equal parts of the hash space number about
 * total/n. So a list of 100,000 rows splits into n buckets fetched by hash range, and any
 * bucket — the one the scrollbar was dragged to — is one request away (docs/dashboard-api.md).
 */

/** Nix's base32 alphabet, which is in ascending byte order (as DynamoDB sorts strings). */
export const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
/** 32^4 ≈ a million positions: enough for any bucket count a list of rows needs. */
const PREFIX_DIGITS = 4;

/** The hash prefix at `fraction` (0 ≤ fraction < 1) of the hash space. */
export function prefixAt(fraction: number): string {
  const positions = NIX_BASE32.length ** PREFIX_DIGITS;
  let value = Math.min(positions - 1, Math.max(0, Math.floor(fraction * positions)));
  let prefix = "";
  for (let i = 0; i < PREFIX_DIGITS; i++) {
    prefix = NIX_BASE32[value % NIX_BASE32.length]! + prefix;
    value = Math.floor(value / NIX_BASE32.length);
  }
  return prefix;
}

export interface HashRange {
  /** Inclusive; absent for the first bucket. */
  from?: string;
  /** Exclusive; absent for the last bucket. */
  to?: string;
}

/** Bucket `index` of `count` equal parts of the hash space. */
export function bucketRange(index: number, count: number): HashRange {
  const range: HashRange = {};
  if (index > 0) range.from = prefixAt(index / count);
  if (index < count - 1) range.to = prefixAt((index + 1) / count);
  return range;
}

/** The store hash of a store path (`/nix/store/<hash>-<name>`). */
export function storeHash(storePath: string): string {
  const name = storePath.slice(storePath.lastIndexOf("/") + 1);
  return name.slice(0, name.indexOf("-"));
}

/** Whether a hash lies in the range (`to` is exclusive: a hash starting with it is past it). */
export function inRange(hash: string, range: HashRange): boolean {
  return (range.from === undefined || hash >= range.from) && (range.to === undefined || hash < range.to);
}

/** Which of `count` buckets holds the hash. */
export function bucketOf(hash: string, count: number): number {
  let low = 0;
  let high = count - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (hash >= prefixAt(middle / count)) low = middle;
    else high = middle - 1;
  }
  return low;
}
