/**
 * Keeping every message inside one 32 KB WebSocket frame: strings are cut to size and lists are
 * split by their serialized size, not only by count.
 */
import { MAX_FRAME_BYTES } from "@nimbus/protocol";

/** Room left for what `JSON.stringify` of the envelope might add beyond our own estimate. */
export const FRAME_BUDGET_BYTES = MAX_FRAME_BYTES - 512;

/** Bytes of `value` as JSON text. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

const ELLIPSIS = "…";

/**
 * `text` cut to at most `maxChars` characters and `maxJsonBytes` bytes once JSON-encoded,
 * ending in "…" when cut. Keeps the start (`keep: "start"`) or the end.
 */
export function truncateText(text: string, maxChars: number, maxJsonBytes = FRAME_BUDGET_BYTES / 2, keep: "start" | "end" = "start"): string {
  if (text.length <= maxChars && jsonBytes(text) <= maxJsonBytes) return text;
  let length = Math.min(text.length, maxChars - 1);
  for (;;) {
    let cut = keep === "start" ? text.slice(0, length) : text.slice(text.length - length);
    // Never leave half of a surrogate pair at the cut.
    if (keep === "start" && /[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
    if (keep === "end" && /^[\uDC00-\uDFFF]/.test(cut)) cut = cut.slice(1);
    const result = keep === "start" ? cut + ELLIPSIS : ELLIPSIS + cut;
    const bytes = jsonBytes(result);
    if (bytes <= maxJsonBytes || length === 0) return result;
    // Shrink in proportion to the excess (escapes can make a character cost up to 6 bytes).
    length = Math.max(0, Math.min(length - 1, Math.floor((length * maxJsonBytes) / bytes) - 1));
  }
}

/**
 * Splits `items` into consecutive groups of at most `maxCount` items whose serialized size,
 * plus the envelope's, stays within `maxBytes`. `sizes[i]` is the JSON size of `items[i]`;
 * an item too large on its own is a bug in the caller (every item is cut to fit first).
 */
export function splitBySize<T>(items: readonly T[], sizes: readonly number[], envelopeBytes: number, maxCount: number, maxBytes = FRAME_BUDGET_BYTES): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let bytes = envelopeBytes;
  items.forEach((item, i) => {
    const size = sizes[i]! + 1; // the separating comma
    if (current.length > 0 && (current.length >= maxCount || bytes + size > maxBytes)) {
      groups.push(current);
      current = [];
      bytes = envelopeBytes;
    }
    if (envelopeBytes + size > maxBytes) throw new Error(`an item of ${size} bytes cannot fit in a ${maxBytes}-byte message`);
    current.push(item);
    bytes += size;
  });
  if (current.length > 0) groups.push(current);
  return groups;
}
