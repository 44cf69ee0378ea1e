import { createHash } from "node:crypto";

/** The first `length` hex digits of a text's SHA-256: short fixed-size ids (task ids, SQS group and deduplication ids) from any text. */
export const hexDigest = (text: string, length = 64): string => createHash("sha256").update(text).digest("hex").slice(0, length);
