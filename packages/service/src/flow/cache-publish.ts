/**
 * Publishing a path in the built-in cache (docs/cache.md, "What the service checks"): its NAR
 * file must be in the bucket with the size and hash the narinfo claims — read back and hashed
 * here when small (and, for zstd or uncompressed files, the NAR's own hash and size too), else
 * the SHA-256 S3 checked at upload — and every path it refers to must be published already.
 * Only then is it indexed, and from then on served, signed by the service. Anything short of
 * that is refused and leaves nothing visible.
 */
import { createHash } from "node:crypto";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { isStorePath, narFileKey, parseSha256, refusedPublication, rounds, sha256NixBase32, storePathHash } from "@nimbus/cache";
import { outputClaims, publishedReport } from "@nimbus/core";
import { BUILTIN_CACHE_NAME, type BuildResult, type CacheReport, type UploadedPath, type UploadVerdict } from "@nimbus/protocol";
import { cacheSettings } from "../platform/cache-settings.ts";
import { CACHE_USE_SHARD, type CachePathItem } from "../storage/cache-items.ts";
import { addToStats, presentPaths, putCachePath, putReferences, touchPaths } from "../storage/cache-index.ts";
import { indexShard } from "../storage/keys.ts";
import { headObject, readObject } from "../storage/cache-objects.ts";

const refused = (storePath: string, reason: string): UploadVerdict => ({ storePath, status: "refused", reason: reason.slice(0, 300) });

/** What publications add to the cache's totals (CacheStats). */
export interface Totals {
  paths: number;
  fileBytes: number;
  narBytes: number;
}

export async function publishPath(claim: UploadedPath, now = new Date()): Promise<UploadVerdict> {
  return (await publishPaths([claim], now))[0]!;
}

/**
 * Publishes claims in rounds — a path after those of the batch it refers to (a path is refused
 * while its references are not published), the paths of one round at once — and answers in the
 * order given. Totals as publishPaths adds them.
 */
export async function publishInRounds(claims: readonly UploadedPath[], now: Date, totals?: Totals): Promise<UploadVerdict[]> {
  const infos = new Map(claims.map((c) => [c.storePath, { references: c.references }]));
  const roundOf = new Map(rounds([...infos.keys()], infos).flatMap((round, i) => round.map((p) => [p, i] as const)));
  const verdicts: UploadVerdict[] = new Array(claims.length);
  const last = Math.max(0, ...roundOf.values());
  for (let round = 0; round <= last; round++) {
    const indexes = claims.flatMap((claim, i) => (roundOf.get(claim.storePath) === round ? [i] : []));
    const published = await publishPaths(indexes.map((i) => claims[i]!), now, totals);
    indexes.forEach((claimIndex, j) => (verdicts[claimIndex] = published[j]!));
  }
  return verdicts;
}

/**
 * The publication a build's result carries (docs/cache.md, "Publication with the result"): the
 * claims of its outputs' closure (core `outputClaims`) are checked and published as a completion's
 * would be, any other claim refused untouched; the built-in cache's report is then what the
 * verdicts say, in the words the agent's own completion would have used. The result's other
 * reports are as the agent sent them. The totals are the caller's to add (addTotals).
 */
export async function publishWithResult(result: BuildResult, now: Date, totals: Totals): Promise<CacheReport[]> {
  const reports = result.caches ?? [];
  if (result.status !== "succeeded" || !result.publish) return reports;
  const { own, foreign } = outputClaims(result.outputs, result.publish);
  const verdicts = [
    ...(await publishInRounds(own, now, totals)),
    ...foreign.map((claim) => refused(claim.storePath, "is not an output of this build, nor in its outputs' closure: a build's result publishes only those")),
  ];
  const refusal = refusedPublication(BUILTIN_CACHE_NAME, verdicts)?.message;
  const report = publishedReport(BUILTIN_CACHE_NAME, reports.find((r) => r.cache === BUILTIN_CACHE_NAME), verdicts, refusal);
  return [...reports.filter((r) => r.cache !== BUILTIN_CACHE_NAME), report];
}

/** Adds what publications added to the cache's totals, if anything: one write. */
export async function addTotals(totals: Totals): Promise<void> {
  if (totals.paths > 0) await addToStats(totals);
}

/**
 * Publishes paths that do not refer to one another (one round of a completion), each as
 * publishPath would, with one addition to the totals for them all, instead of one per path —
 * or none, when the caller keeps the `totals` and adds them later (addTotals).
 * A path is completed after an upload URL the service gave because it was not published, so
 * each is checked and put at once (the put keeps the first, and says when the path was there);
 * only a path refused is looked up, and is `present` if it was published meanwhile.
 */
export async function publishPaths(claims: readonly UploadedPath[], now = new Date(), totals?: Totals): Promise<UploadVerdict[]> {
  const added = totals ?? { paths: 0, fileBytes: 0, narBytes: 0 };
  // The valid paths whose check or put was refused (by their place in `claims`): looked up once, together, afterwards.
  const refusedValid = new Set<number>();
  const verdicts = await Promise.all(
    claims.map(async (claim, i): Promise<UploadVerdict> => {
      const invalid = notStorePath(claim);
      if (invalid) return refused(claim.storePath, `${invalid.slice(0, 120)} is not a store path under /nix/store`);
      const verdict = await publishAbsent(claim, now);
      if (verdict.status === "refused") refusedValid.add(i);
      if (verdict.status === "published") {
        added.paths += 1;
        added.fileBytes += claim.fileSize;
        added.narBytes += claim.narSize;
      }
      return verdict;
    }),
  );
  const published = await presentPaths([...refusedValid].map((i) => storePathHash(claims[i]!.storePath)), { consistent: true });
  if (!totals) await addTotals(added);
  return verdicts.map((verdict, i) =>
    refusedValid.has(i) && published.has(storePathHash(claims[i]!.storePath)) ? { storePath: claims[i]!.storePath, status: "present" } : verdict,
  );
}

/** The first of the claim's paths that is not a store path, if any. */
const notStorePath = (claim: UploadedPath) => [claim.storePath, ...claim.references, ...(claim.deriver ? [claim.deriver] : [])].find((p) => !isStorePath(p));

/** Checks and indexes a path that was not published when its upload URL was given (the totals are the caller's). */
async function publishAbsent(claim: UploadedPath, now: Date): Promise<UploadVerdict> {
  const { storePath } = claim;
  const storeHash = storePathHash(storePath);
  const fileKey = narFileKey(claim.fileHash, claim.compression);
  const problem = await checkFile(fileKey, claim);
  if (problem) return refused(storePath, problem);

  const referenced = [...new Set(claim.references.map(storePathHash))].filter((h) => h !== storeHash);
  const present = await presentPaths(referenced);
  const absent = claim.references.filter((r) => storePathHash(r) !== storeHash && !present.has(storePathHash(r)));
  if (absent.length > 0) {
    return refused(storePath, `refers to ${absent.length} path(s) not in the cache, e.g. ${absent[0]}: push references first`);
  }
  // A reference about to be collected is marked used first; one collected meanwhile refuses this path.
  const fresh = new Date(now.getTime() - cacheSettings().retentionMs / 10);
  const stale = [...present.values()].filter((p) => p.lastUsedAt < fresh.toISOString()).map((p) => p.storeHash);
  const touched = await touchPaths(stale, now, fresh);
  const gone = stale.filter((h) => !touched.has(h));
  if (gone.length > 0 && (await presentPaths(gone)).size < gone.length) {
    return refused(storePath, "a path it refers to was removed from the cache meanwhile: push it again");
  }
  await putReferences(storeHash, referenced);

  const at = now.toISOString();
  const item: CachePathItem = {
    storeHash,
    storePath,
    fileKey,
    compression: claim.compression,
    fileHash: claim.fileHash,
    fileSize: claim.fileSize,
    narHash: claim.narHash,
    narSize: claim.narSize,
    references: [...claim.references].sort(),
    ...(claim.deriver ? { deriver: claim.deriver } : {}),
    ...(claim.ca ? { ca: claim.ca } : {}),
    createdAt: at,
    lastUsedAt: at,
    useShard: indexShard(CACHE_USE_SHARD, storeHash),
  };
  if (!(await putCachePath(item))) return { storePath, status: "present" };
  return { storePath, status: "published" };
}

/** Why the file in the bucket is not what the claim says, or undefined when it is. */
async function checkFile(fileKey: string, claim: UploadedPath): Promise<string | undefined> {
  // Small enough to read: the GET says what a HEAD would, so none is made.
  if (claim.fileSize <= cacheSettings().verifyReadBytes) return verifyByReading(fileKey, claim);
  const head = await headObject(fileKey);
  if (!head) return notUploaded(fileKey);
  if (head.size !== claim.fileSize) return wrongSize(head.size, claim);
  // Too big to read here: S3 checked the SHA-256 signed into the upload URL, and keeps it.
  const expected = Buffer.from(parseSha256(claim.fileHash)).toString("base64");
  if (head.sha256Base64 === undefined) return `S3 holds no SHA-256 for ${fileKey}: it was not uploaded through a Nimbus upload URL`;
  if (head.sha256Base64 !== expected) return `the uploaded NAR file's SHA-256 is not the FileHash claimed`;
  return undefined;
}

const notUploaded = (fileKey: string) => `its NAR file ${fileKey} was not uploaded (or the upload did not finish)`;
const wrongSize = (size: number, claim: UploadedPath) => `the uploaded NAR file has ${size} bytes, not the ${claim.fileSize} claimed`;

async function verifyByReading(fileKey: string, claim: UploadedPath): Promise<string | undefined> {
  const object = await readObject(fileKey);
  if (!object) return notUploaded(fileKey);
  if (object.size !== claim.fileSize) {
    object.body.destroy();
    return wrongSize(object.size, claim);
  }
  const fileHash = createHash("sha256");
  const narHash = createHash("sha256");
  let narSize = 0;
  const decompress = claim.compression === "none" ? new PassThrough() : claim.compression === "zstd" && typeof zlib.createZstdDecompress === "function" ? zlib.createZstdDecompress() : undefined;
  const body: Readable = object.body;
  const tee = new PassThrough();
  tee.on("data", (chunk: Buffer) => fileHash.update(chunk));
  try {
    if (decompress) {
      decompress.on("data", (chunk: Buffer) => {
        narHash.update(chunk);
        narSize += chunk.length;
      });
      await pipeline(body, tee, decompress);
    } else {
      tee.resume();
      await pipeline(body, tee);
    }
  } catch (error) {
    return `the uploaded NAR file could not be read as ${claim.compression}: ${(error as Error).message}`;
  }
  if (sha256NixBase32(fileHash.digest()) !== claim.fileHash) return "the uploaded NAR file's SHA-256 is not the FileHash claimed";
  if (decompress) {
    if (narSize !== claim.narSize) return `the NAR in the uploaded file has ${narSize} bytes, not the NarSize ${claim.narSize} claimed`;
    if (sha256NixBase32(narHash.digest()) !== claim.narHash) return "the NAR in the uploaded file does not have the NarHash claimed";
  }
  return undefined;
}
