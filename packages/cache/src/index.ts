export { decodeNixBase32, encodeNixBase32, nixBase32Length } from "./nix-base32.ts";
export { isStorePath, isStorePathHash, STORE_DIR, StorePath, storePathBaseName, storePathHash } from "./store-path.ts";
export { parseSha256, sha256Hex, sha256NixBase32 } from "./nar-hash.ts";
export {
  generateSecretKey,
  narinfoFingerprint,
  NixKeyError,
  parsePublicKey,
  parseSecretKey,
  type PublicKey,
  type SecretKey,
  signFingerprint,
  verifyFingerprint,
} from "./signing.ts";
export { fingerprintOf, formatNarinfo, Narinfo, NarinfoError, parseNarinfo } from "./narinfo.ts";
export { CacheConfigError, CachePushError, CacheUnreachableError } from "./errors.ts";
export { type CheckedStoreUri, checkStoreUri, type StoreScheme } from "./store-uri.ts";
export {
  type AtticCacheConfig,
  type BinaryCaches,
  CACHE_KINDS,
  type CacheConfig,
  type CacheKind,
  type CachixCacheConfig,
  loadBinaryCaches,
  type NixCacheConfig,
  parseBinaryCaches,
  type ParseOptions,
  PublicCacheInfo,
  publicView,
} from "./binary-caches.ts";
