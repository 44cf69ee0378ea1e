/** A published path's narinfo, signed by the service's key when it is served (docs/cache.md). */
import { fingerprintOf, formatNarinfo, parseSecretKey, type SecretKey, signFingerprint } from "@nimbus/cache";
import { secretValue } from "../platform/linked-resources.ts";
import type { CachePathItem } from "../storage/cache-items.ts";

let key: { text: string; parsed: SecretKey } | undefined;

/** The service's signing key (`CacheSigningKey`), parsed once per container. */
export function signingKey(): SecretKey {
  const text = secretValue("CacheSigningKey");
  if (key?.text !== text) key = { text, parsed: parseSecretKey(text) };
  return key.parsed;
}

export function narinfoText(item: CachePathItem, secretKey: SecretKey = signingKey()): string {
  const info = { storePath: item.storePath, narHash: item.narHash, narSize: item.narSize, references: item.references };
  return formatNarinfo({
    ...info,
    url: item.fileKey,
    compression: item.compression,
    fileHash: item.fileHash,
    fileSize: item.fileSize,
    ...(item.deriver ? { deriver: item.deriver } : {}),
    sigs: [signFingerprint(secretKey, fingerprintOf(info))],
    ...(item.ca ? { ca: item.ca } : {}),
  });
}
