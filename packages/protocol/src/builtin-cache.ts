import * as z from "zod";
import { StorePath } from "./nix-names.ts";

/**
 * The built-in binary cache (docs/cache.md): what agents say over the socket to upload to it,
 * and what the JSON API and `nimbus cache …` show of it. Uploads never carry AWS credentials:
 * the service hands out presigned URLs, the agent PUTs the NAR file straight to the bucket,
 * then asks the service to check and publish it — with `cache-upload-complete`, or, for a build's
 * outputs, in its `build-result`.
 */

/** The name the built-in cache has in sources (`cache:nimbus`), agent info and build results. */
export const BUILTIN_CACHE_NAME = "nimbus";

/** Paths per `cache-upload-request`: each answer carries a presigned URL (≈2 KB in AWS) and must fit in one frame. */
export const CACHE_UPLOAD_BATCH = 8;
/** Paths per `cache-upload-complete`: the answer (a verdict each, reasons up to 300 characters) fits in one frame. */
export const CACHE_COMPLETE_BATCH = 48;
/**
 * Paths a `build-result` may carry to publish (`publish`): the last completion of a build's
 * outputs travels with its result, when it is this small (and fits the result's frame).
 */
export const CACHE_PUBLISH_WITH_RESULT = 16;

/** `sha256:<52 base32 characters>`, as narinfos write hashes. */
export const NixSha256 = z.string().regex(/^sha256:[0-9abcdfghijklmnpqrsvwxyz]{52}$/, "sha256:<52 Nix base32 characters>");

/** How a NAR file is compressed; the agent uploads zstd, `nix copy` picks its own. */
export const NarCompression = z.enum(["none", "zstd", "xz", "bzip2", "br"]);
export type NarCompression = z.infer<typeof NarCompression>;

/** The file an agent is about to upload for a store path: the service signs a PUT URL for exactly these bytes. */
export const UploadFile = z.strictObject({
  storePath: StorePath,
  fileHash: NixSha256,
  fileSize: z.number().int().positive().max(5 * 1024 ** 3),
  compression: NarCompression,
});
export type UploadFile = z.infer<typeof UploadFile>;

/** agent → service: presigned PUT URLs for files the cache lacks. */
export const CacheUploadRequest = z.strictObject({
  type: z.literal("cache-upload-request"),
  requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a request id"),
  files: z.array(UploadFile).min(1).max(CACHE_UPLOAD_BATCH),
});
export type CacheUploadRequest = z.infer<typeof CacheUploadRequest>;

/** What the agent claims of an uploaded path: the narinfo's fields, but for the URL and signatures (the service's). */
export const UploadedPath = z.strictObject({
  storePath: StorePath,
  fileHash: NixSha256,
  fileSize: z.number().int().positive(),
  compression: NarCompression,
  narHash: NixSha256,
  narSize: z.number().int().positive(),
  references: z.array(StorePath).max(4096),
  deriver: StorePath.optional(),
  ca: z.string().min(1).max(512).optional(),
});
export type UploadedPath = z.infer<typeof UploadedPath>;

/** agent → service: these files are uploaded; check them and publish the paths. References must already be in the cache. */
export const CacheUploadComplete = z.strictObject({
  type: z.literal("cache-upload-complete"),
  requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a request id"),
  paths: z.array(UploadedPath).min(1).max(CACHE_COMPLETE_BATCH),
});
export type CacheUploadComplete = z.infer<typeof CacheUploadComplete>;

/** One file's answer: PUT it to `url` with exactly `headers`, or nothing to do (the path is in the cache), or refused. */
export const UploadSlot = z.discriminatedUnion("status", [
  z.strictObject({ storePath: StorePath, status: z.literal("upload"), url: z.string().min(1).max(4096), headers: z.record(z.string(), z.string()) }),
  z.strictObject({ storePath: StorePath, status: z.literal("present") }),
  z.strictObject({ storePath: StorePath, status: z.literal("refused"), reason: z.string().min(1).max(300) }),
]);
export type UploadSlot = z.infer<typeof UploadSlot>;

/** service → agent: the answer to `cache-upload-request`. */
export const CacheUploadUrls = z.strictObject({
  type: z.literal("cache-upload-urls"),
  requestId: z.string(),
  files: z.array(UploadSlot).max(CACHE_UPLOAD_BATCH),
  /** When the URLs stop working. */
  expiresAt: z.iso.datetime(),
});
export type CacheUploadUrls = z.infer<typeof CacheUploadUrls>;

/** One path's verdict: published (or already there), or refused with why — it is then not in the cache. */
export const UploadVerdict = z.discriminatedUnion("status", [
  z.strictObject({ storePath: StorePath, status: z.literal("published") }),
  z.strictObject({ storePath: StorePath, status: z.literal("present") }),
  z.strictObject({ storePath: StorePath, status: z.literal("refused"), reason: z.string().min(1).max(300) }),
]);
export type UploadVerdict = z.infer<typeof UploadVerdict>;

/** service → agent: the answer to `cache-upload-complete`. */
export const CacheUploadResult = z.strictObject({
  type: z.literal("cache-upload-result"),
  requestId: z.string(),
  paths: z.array(UploadVerdict).max(CACHE_COMPLETE_BATCH),
});
export type CacheUploadResult = z.infer<typeof CacheUploadResult>;

/** In `welcome`: the built-in cache's public key, which the agent's Nix trusts for it. */
export const WelcomeCache = z.strictObject({ publicKey: z.string().min(1).max(256) });

// ---- the JSON API ----------------------------------------------------------

export const CacheAccess = z.enum(["read", "write"]);
export type CacheAccess = z.infer<typeof CacheAccess>;

/** `POST /api/cache/tokens` */
export const CreateCacheTokenRequest = z.strictObject({
  access: CacheAccess,
  name: z.string().trim().min(1).max(100).regex(/^[\w .@:-]+$/, "letters, digits, space and . _ @ : -").optional(),
  /** Lifetime in seconds; absent: never expires. */
  expiresInSeconds: z.number().int().positive().max(10 * 365 * 24 * 3600).optional(),
});
export type CreateCacheTokenRequest = z.infer<typeof CreateCacheTokenRequest>;

export const CacheTokenView = z.strictObject({
  id: z.string(),
  name: z.string(),
  access: CacheAccess,
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime().optional(),
  revokedAt: z.iso.datetime().optional(),
});
export type CacheTokenView = z.infer<typeof CacheTokenView>;

/** The only time the secret is shown. */
export const CreateCacheTokenResponse = CacheTokenView.extend({ token: z.string() });
export type CreateCacheTokenResponse = z.infer<typeof CreateCacheTokenResponse>;

export const CacheTokenList = z.strictObject({ tokens: z.array(CacheTokenView) });
export type CacheTokenList = z.infer<typeof CacheTokenList>;

/** `GET /api/cache`: what `nimbus cache info` prints. */
export const CacheInfoView = z.strictObject({
  url: z.string(),
  publicKey: z.string(),
  /** Paths published, and the bytes of their NAR files (as stored: compressed). */
  pathCount: z.number().int().min(0),
  fileBytes: z.number().int().min(0),
  narBytes: z.number().int().min(0),
  /** Paths unused this long, and referenced by no other path, are removed. */
  retentionDays: z.number().positive(),
  lastCollection: z
    .strictObject({ at: z.iso.datetime(), removedPaths: z.number().int().min(0), removedBytes: z.number().int().min(0) })
    .optional(),
});
export type CacheInfoView = z.infer<typeof CacheInfoView>;
