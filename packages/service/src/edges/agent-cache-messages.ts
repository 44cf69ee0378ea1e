/** An agent's uploads to the built-in cache over its socket (docs/protocol.md, "Uploads to the built-in cache"). */
import type { CacheUploadComplete, CacheUploadRequest, ServiceMessage } from "@nimbus/protocol";
import { publishPath } from "../flow/cache-publish.ts";
import { issueUploads } from "../flow/cache-uploads.ts";

export async function cacheUploadUrls(message: CacheUploadRequest, now: Date): Promise<ServiceMessage> {
  const { slots, expiresAt } = await issueUploads(message.files, now);
  return { type: "cache-upload-urls", requestId: message.requestId, files: slots, expiresAt };
}

export async function cacheUploadResult(message: CacheUploadComplete, now: Date): Promise<ServiceMessage> {
  // One at a time, in the order sent: the agent sends references before the paths that refer to them.
  const paths = [];
  for (const claim of message.paths) paths.push(await publishPath(claim, now));
  return { type: "cache-upload-result", requestId: message.requestId, paths };
}
