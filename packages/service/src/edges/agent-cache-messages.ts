/** An agent's uploads to the built-in cache over its socket (docs/protocol.md, "Uploads to the built-in cache"). */
import type { CacheUploadComplete, CacheUploadRequest, ServiceMessage } from "@nimbus/protocol";
import { publishInRounds } from "../flow/cache-publish.ts";
import { issueUploads } from "../flow/cache-uploads.ts";

export async function cacheUploadUrls(message: CacheUploadRequest, now: Date): Promise<ServiceMessage> {
  const { slots, expiresAt } = await issueUploads(message.files, now);
  return { type: "cache-upload-urls", requestId: message.requestId, files: slots, expiresAt };
}

export async function cacheUploadResult(message: CacheUploadComplete, now: Date): Promise<ServiceMessage> {
  // A batch of outputs or .drv files that do not refer to each other is one round.
  return { type: "cache-upload-result", requestId: message.requestId, paths: await publishInRounds(message.paths, now) };
}
