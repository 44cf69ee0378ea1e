/**
 * A store path's NAR, serialized here rather than by a `nix-store --dump` process per path:
 * Nix's archive format (strings as a 64-bit little-endian length, the bytes, zero padding to
 * 8), regular files (with `executable` when the owner may execute them), symlinks, and
 * directories with their entries in byte order. Callers check the result against the hash Nix
 * registered (local-store.ts), so a store changed under us is caught, never published.
 */
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import path from "node:path";

const PADDING = Buffer.alloc(8);

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function padding(length: number): Buffer {
  return PADDING.subarray(0, (8 - (length % 8)) % 8);
}

function str(s: string | Buffer): Buffer {
  const bytes = typeof s === "string" ? Buffer.from(s, "utf8") : s;
  return Buffer.concat([u64(bytes.length), bytes, padding(bytes.length)]);
}

/** Thrown when a file of the path is neither a regular file, a symlink nor a directory. */
export class NarSerializeError extends Error {
  override readonly name = "NarSerializeError";
}

/** The NAR of `fsPath`, in pieces; reading stops when the consumer stops. */
export async function* narPieces(fsPath: string | Buffer): AsyncGenerator<Buffer> {
  yield str("nix-archive-1");
  yield* node(fsPath);
}

async function* node(fsPath: string | Buffer): AsyncGenerator<Buffer> {
  const stat = await lstat(fsPath);
  yield str("(");
  if (stat.isSymbolicLink()) {
    yield Buffer.concat([str("type"), str("symlink"), str("target"), str(await readlink(fsPath, { encoding: "buffer" }))]);
  } else if (stat.isFile()) {
    yield Buffer.concat([str("type"), str("regular"), ...(stat.mode & 0o100 ? [str("executable"), str("")] : []), str("contents"), u64(stat.size)]);
    let read = 0;
    for await (const chunk of createReadStream(fsPath, { highWaterMark: 256 * 1024 })) {
      read += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (read !== stat.size) throw new NarSerializeError(`${fsPath.toString()} changed while it was read (${read} bytes, not ${stat.size})`);
    yield padding(stat.size);
  } else if (stat.isDirectory()) {
    yield Buffer.concat([str("type"), str("directory")]);
    // Byte order, as Nix sorts names (readdir's order is the file system's).
    const names = (await readdir(fsPath, { encoding: "buffer" })).sort(Buffer.compare);
    for (const name of names) {
      yield Buffer.concat([str("entry"), str("("), str("name"), str(name), str("node")]);
      yield* node(Buffer.concat([Buffer.from(fsPath), Buffer.from(path.sep), name]));
      yield str(")");
    }
  } else {
    throw new NarSerializeError(`${fsPath.toString()} is neither a regular file, a symlink nor a directory`);
  }
  yield str(")");
}
