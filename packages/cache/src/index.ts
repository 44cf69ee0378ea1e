export { decodeNixBase32, encodeNixBase32, NIX_BASE32_CHARS, nixBase32Length } from "./nix-base32.ts";
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
export { type CachePresence, type MissingResult, type QueryOptions } from "./presence.ts";
export { filePresence } from "./file-presence.ts";
export { httpPresence, type HttpPresenceOptions } from "./http-presence.ts";
export { CACHIX_BULK_LIMIT, cachixPresence, CachixNarinfoBulkRequest, CachixNarinfoBulkResponse } from "./cachix-presence.ts";
export { AtticGetMissingPathsRequest, AtticGetMissingPathsResponse, atticPresence } from "./attic-presence.ts";
export {
  CACHE_MISSING_MAX_PATHS,
  CacheMissingRequest,
  CacheMissingResponse,
  nimbusPresence,
  type NimbusPresenceOptions,
} from "./nimbus-cache-api.ts";
export {
  CachixCompletedMultipartUpload,
  CachixCreateMultipartResponse,
  CachixNarInfoCreate,
  CachixSigningData,
  CachixUploadPartResponse,
} from "./cachix-push.ts";
export { ATTIC_NAR_INFO, ATTIC_NAR_INFO_PREAMBLE_SIZE, AtticUploadPathNarInfo, AtticUploadPathResult } from "./attic-push.ts";
export { CACHIX_API_URL, type CacheServices, cachixApiBase, netrcEntriesFor, netrcFor, substituterUrl } from "./cache-endpoints.ts";
export { formatNetrc, type NetrcEntry, netrcCredentials, parseNetrc, writePrivateNetrc } from "./netrc.ts";
export { substituterArgs, type SubstituterOptions, substituterSettings } from "./substituters.ts";
export { dumpNar, type LocalPathInfo, localPathInfos, type NarStream, type PathInfoOptions, type PathInfoSource, storeClosure } from "./local-store.ts";
export { NixCommandError } from "./nix-process.ts";
export { NixServePathInfos } from "./nix-serve.ts";
export { basicAuthorization } from "./cache-http.ts";
export {
  type BinaryCacheClient,
  type CacheClientOptions,
  missingEverywhere,
  openCache,
  openCaches,
  pushClosure,
  type PushOptions,
  closureWithInfos,
  type UploadOptions,
  UNASKED_MAX_PATHS,
  type PushResult,
  pushToCaches,
} from "./cache-client.ts";
export { withPrivateFile } from "./private-file.ts";
export { narFileKey, parseNarFileKey, sessionCacheKey, sessionCacheKeyFromSecret } from "./builtin-cache-names.ts";
export {
  type BuiltinUploadChannel,
  type BuiltinUploadCounts,
  type BuiltinUploadOptions,
  completeUploads,
  IN_MEMORY_NAR_BYTES,
  refusedPublication,
  rounds,
  uploadToBuiltinCache,
} from "./nimbus-cache-push.ts";
export { serveConnection, ServeIncoming, serveInt, ServeProtocolError, serveString } from "./serve-protocol.ts";
