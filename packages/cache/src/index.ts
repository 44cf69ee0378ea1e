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
