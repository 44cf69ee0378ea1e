/** An agent's uploads to the built-in cache over its socket (docs/protocol.md, "Uploads to the built-in cache"). */
import { rounds } from "@nimbus/cache";
import type { CacheUploadComplete, CacheUploadRequest, ServiceMessage, UploadVerdict } from "@nimbus/protocol";
import { publishPaths } from "../flow/cache-publish.ts";
import { issueUploads } from "../flow/cache-uploads.ts";

export async function cacheUploadUrls(message: CacheUploadRequest, now: Date): Promise<ServiceMessage> {
  const { slots, expiresAt } = await issueUploads(message.files, now);
  return { type: "cache-upload-urls", requestId: message.requestId, files: slots, expiresAt };
}

export async function cacheUploadResult(message: CacheUploadComplete, now: Date): Promise<ServiceMessage> {
  // A path after those of the batch it refers to (a path is refused while its references are not published);
  // the paths of one round at once — a batch of outputs or .drv files that do not refer to each other is one round.
  const claims = message.paths;
  const infos = new Map(claims.map((c) => [c.storePath, { references: c.references }]));
  const roundOf = new Map(rounds([...infos.keys()], infos).flatMap((round, i) => round.map((p) => [p, i] as const)));
  const paths: UploadVerdict[] = new Array(claims.length);
  const last = Math.max(0, ...roundOf.values());
  for (let round = 0; round <= last; round++) {
    const indexes = claims.flatMap((claim, i) => (roundOf.get(claim.storePath) === round ? [i] : []));
    const verdicts = await publishPaths(indexes.map((i) => claims[i]!), now);
    indexes.forEach((claimIndex, j) => (paths[claimIndex] = verdicts[j]!));
  }
  return { type: "cache-upload-result", requestId: message.requestId, paths };
}
