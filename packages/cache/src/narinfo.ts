/**
 * `.narinfo` files, the metadata of a path in a binary cache: parsed strictly (a narinfo the
 * service or an agent acts on must describe a real store path), formatted as Nix writes them.
 */
import { z } from "zod";
import { parseSha256, sha256NixBase32 } from "./nar-hash.ts";
import { narinfoFingerprint } from "./signing.ts";
import { isStorePath, STORE_DIR, storePathBaseName } from "./store-path.ts";

export class NarinfoError extends Error {
  override readonly name = "NarinfoError";
}

const Sha256 = z.string().refine(
  (text) => {
    try {
      parseSha256(text);
      return true;
    } catch {
      return false;
    }
  },
  { message: "a sha256 hash (sha256:<base32>, sha256:<hex> or sha256-<base64>)" },
);
const FullStorePath = z.string().refine(isStorePath, { message: `a store path under ${STORE_DIR}` });
const Token = z.string().regex(/^\S+$/, "a value without spaces");

/** A narinfo's fields; references and deriver are full store paths. */
export const Narinfo = z.strictObject({
  storePath: FullStorePath,
  url: Token,
  compression: Token,
  fileHash: Sha256.optional(),
  fileSize: z.number().int().nonnegative().optional(),
  /** Always `sha256:<base32>` after parsing, as the fingerprint needs it. */
  narHash: Sha256,
  narSize: z.number().int().positive(),
  references: z.array(FullStorePath),
  deriver: FullStorePath.optional(),
  system: Token.optional(),
  sigs: z.array(Token),
  ca: z.string().regex(/^[^\n]+$/).optional(),
});
export type Narinfo = z.infer<typeof Narinfo>;

const KNOWN = ["StorePath", "URL", "Compression", "FileHash", "FileSize", "NarHash", "NarSize", "References", "Deriver", "System", "Sig", "CA"];

/**
 * Parses narinfo text. Unknown keys are ignored, as Nix ignores them (caches add their own);
 * a repeated key other than Sig, a missing StorePath/URL/NarHash/NarSize, a path outside
 * /nix/store or a malformed value is an error naming the key.
 */
export function parseNarinfo(text: string, source = "narinfo"): Narinfo {
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const [index, line] of lines.entries()) {
    const colon = line.indexOf(": ");
    const key = colon === -1 ? (line.endsWith(":") ? line.slice(0, -1) : undefined) : line.slice(0, colon);
    if (key === undefined || key === "") throw new NarinfoError(`${source}:${index + 1}: expected "Key: value", got ${JSON.stringify(line.slice(0, 80))}`);
    const value = colon === -1 ? "" : line.slice(colon + 2);
    if (value.includes("\r")) throw new NarinfoError(`${source}:${index + 1}: ${key} contains a carriage return`);
    if (!KNOWN.includes(key)) continue;
    if (key === "Sig") {
      sigs.push(value);
      continue;
    }
    if (fields.has(key)) throw new NarinfoError(`${source}: ${key} appears twice`);
    fields.set(key, value);
  }
  for (const key of ["StorePath", "URL", "NarHash", "NarSize"]) {
    if (!fields.has(key)) throw new NarinfoError(`${source}: missing ${key}`);
  }
  const number = (key: string): number | undefined => {
    const value = fields.get(key);
    if (value === undefined) return undefined;
    if (!/^\d{1,15}$/.test(value)) throw new NarinfoError(`${source}: ${key} must be a whole number, got ${JSON.stringify(value)}`);
    return Number(value);
  };
  const fullPath = (key: string, base: string): string => {
    if (base.includes("/")) throw new NarinfoError(`${source}: ${key} must name a path in ${STORE_DIR}, got ${JSON.stringify(base)}`);
    return `${STORE_DIR}/${base}`;
  };
  const refs = fields.get("References") ?? "";
  const deriver = fields.get("Deriver");
  const candidate = {
    storePath: fields.get("StorePath"),
    url: fields.get("URL"),
    // Nix's default for narinfos that predate the key.
    compression: fields.get("Compression") ?? "bzip2",
    fileHash: fields.get("FileHash"),
    fileSize: number("FileSize"),
    narHash: fields.get("NarHash"),
    narSize: number("NarSize"),
    references: refs.trim() === "" ? [] : refs.trim().split(/ +/).map((r) => fullPath("References", r)),
    deriver: deriver === undefined || deriver === "unknown-deriver" ? undefined : fullPath("Deriver", deriver),
    system: fields.get("System") || undefined,
    sigs,
    ca: fields.get("CA") || undefined,
  };
  const parsed = Narinfo.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? "");
    const key = NARINFO_KEYS[field as keyof Narinfo] ?? field;
    throw new NarinfoError(`${source}: ${key} must be ${issue.message.replace(/^Invalid input: expected /, "")}`);
  }
  return { ...parsed.data, narHash: sha256NixBase32(parseSha256(parsed.data.narHash)) };
}

const NARINFO_KEYS: Record<keyof Narinfo, string> = {
  storePath: "StorePath",
  url: "URL",
  compression: "Compression",
  fileHash: "FileHash",
  fileSize: "FileSize",
  narHash: "NarHash",
  narSize: "NarSize",
  references: "References",
  deriver: "Deriver",
  system: "System",
  sigs: "Sig",
  ca: "CA",
};

/** The narinfo text, in Nix's key order. */
export function formatNarinfo(input: Narinfo): string {
  const info = Narinfo.parse(input);
  const lines = [`StorePath: ${info.storePath}`, `URL: ${info.url}`, `Compression: ${info.compression}`];
  if (info.fileHash !== undefined) lines.push(`FileHash: ${info.fileHash}`);
  if (info.fileSize !== undefined) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${info.narHash}`, `NarSize: ${info.narSize}`);
  lines.push(`References: ${info.references.map(storePathBaseName).join(" ")}`);
  if (info.deriver !== undefined) lines.push(`Deriver: ${storePathBaseName(info.deriver)}`);
  if (info.system !== undefined) lines.push(`System: ${info.system}`);
  for (const sig of info.sigs) lines.push(`Sig: ${sig}`);
  if (info.ca !== undefined) lines.push(`CA: ${info.ca}`);
  return `${lines.join("\n")}\n`;
}

/** The fingerprint a narinfo's signatures sign. */
export function fingerprintOf(info: Pick<Narinfo, "storePath" | "narHash" | "narSize" | "references">): string {
  return narinfoFingerprint({ ...info, narHash: sha256NixBase32(parseSha256(info.narHash)) });
}
