/**
 * Presigned upload URLs for agents (docs/protocol.md, `cache-upload-request`): one per file the
 * cache lacks, for exactly the bytes the agent described, valid for a short while. Nothing is
 * recorded: a file uploaded and never completed is published by nobody.
 */
import { isStorePath, narFileKey, parseSha256, storePathHash } from "@nimbus/cache";
import type { UploadFile, UploadSlot } from "@nimbus/protocol";
import { cacheSettings } from "../platform/cache-settings.ts";
import { presentPaths } from "../storage/cache-index.ts";
import { presignUpload } from "../storage/cache-objects.ts";

export async function issueUploads(files: readonly UploadFile[], now = new Date()): Promise<{ slots: UploadSlot[]; expiresAt: string }> {
  const { urlLifetimeSeconds } = cacheSettings();
  const valid = files.filter((f) => isStorePath(f.storePath));
  const present = await presentPaths(valid.map((f) => storePathHash(f.storePath)));
  const slots = await Promise.all(
    files.map(async (file): Promise<UploadSlot> => {
      if (!isStorePath(file.storePath)) return { storePath: file.storePath, status: "refused", reason: "not a store path under /nix/store" };
      if (present.has(storePathHash(file.storePath))) return { storePath: file.storePath, status: "present" };
      const key = narFileKey(file.fileHash, file.compression);
      const sha256 = Buffer.from(parseSha256(file.fileHash)).toString("base64");
      const { url, headers } = await presignUpload(key, file.fileSize, sha256, urlLifetimeSeconds);
      return { storePath: file.storePath, status: "upload", url, headers };
    }),
  );
  return { slots, expiresAt: new Date(now.getTime() + urlLifetimeSeconds * 1000).toISOString() };
}
