/**
 * What the agent's own Nix store says about paths, through the legacy `nix-store` commands:
 * they take store paths literally. (Nix 2.8's `nix path-info`, `nix copy` and `nix store sign`
 * read a `.drv` argument as "its outputs" unless told `--derivation`, and with `--derivation`
 * read an output path as "its deriver".)
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { argumentChunks, NixCommandError, type NixRunOptions, runNix } from "./nix-process.ts";
import { sha256NixBase32 } from "./nar-hash.ts";
import { narPieces } from "./nar-writer.ts";

/** The closure of `roots` (the roots included), as `nix-store --query --requisites` gives it. */
export async function storeClosure(roots: readonly string[], options: NixRunOptions = {}): Promise<string[]> {
  const all = new Set<string>();
  for (const part of argumentChunks(roots)) {
    const out = await runNix("nix-store", ["--query", "--requisites", ...part], options);
    for (const line of out.split("\n")) if (line !== "") all.add(line);
  }
  return [...all];
}

export interface LocalPathInfo {
  storePath: string;
  /** `sha256:<base32>`. */
  narHash: string;
  narSize: number;
  references: string[];
  deriver: string | undefined;
}

/** Where path registration can be read from (nix-serve.ts); undefined when it could not be asked (use `nix-store --dump-db`). */
export interface PathInfoSource {
  pathInfos(storePaths: readonly string[]): Promise<Map<string, LocalPathInfo> | undefined>;
}

export interface PathInfoOptions extends NixRunOptions {
  /** Where path registration is asked first, rather than a `nix-store --dump-db` process. */
  pathInfos?: PathInfoSource;
}

/** Registration info for each path (hash, size, deriver, references): from `options.pathInfos` when it answers, else `nix-store --dump-db`. */
export async function localPathInfos(storePaths: readonly string[], options: PathInfoOptions = {}): Promise<Map<string, LocalPathInfo>> {
  const served = await options.pathInfos?.pathInfos(storePaths);
  if (served !== undefined && storePaths.every((p) => served.has(p))) return served;
  const infos = new Map<string, LocalPathInfo>();
  for (const part of argumentChunks(storePaths)) {
    const lines = (await runNix("nix-store", ["--dump-db", ...part], options)).split("\n");
    let i = 0;
    while (i < lines.length && lines[i] !== "") {
      const storePath = lines[i++]!;
      const hashHex = lines[i++]!;
      const narSize = Number(lines[i++]);
      const deriver = lines[i++]!;
      const count = Number(lines[i++]);
      const references = lines.slice(i, i + count);
      i += count;
      if (!/^[0-9a-f]{64}$/.test(hashHex) || !Number.isSafeInteger(narSize) || !Number.isSafeInteger(count)) {
        throw new NixCommandError(`nix-store --dump-db printed something unexpected for ${storePath}`);
      }
      infos.set(storePath, {
        storePath,
        narHash: sha256NixBase32(Buffer.from(hashHex, "hex")),
        narSize,
        references,
        deriver: deriver === "" ? undefined : deriver,
      });
    }
  }
  for (const storePath of storePaths) {
    if (!infos.has(storePath)) throw new NixCommandError(`${storePath} is not valid in the local store`);
  }
  return infos;
}

export interface NarStream {
  /** The NAR bytes as `nix-store --dump` writes them. */
  stream: ReadableStream<Uint8Array>;
  /** Resolves after the stream ended: the NAR's hash (`sha256:<base32>`) and size, computed while streaming. */
  done: Promise<{ narHash: string; narSize: number }>;
}

/**
 * Streams the NAR of `storePath`, hashing it on the way: serialized here (nar-writer.ts), or by
 * `nix-store --dump` when the path cannot be read where its name says (a store whose files live
 * elsewhere, such as a chroot store).
 */
export function dumpNar(storePath: string, options: NixRunOptions = {}): NarStream {
  if (!readableHere(storePath)) return dumpNarWithNix(storePath, options);
  const hash = createHash("sha256");
  let size = 0;
  let settle!: { resolve: (v: { narHash: string; narSize: number }) => void; reject: (e: Error) => void };
  const done = new Promise<{ narHash: string; narSize: number }>((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => {});
  const pieces = narPieces(storePath);
  const fail = (err: unknown) => {
    const error = new NixCommandError(`cannot read the NAR of ${storePath}: ${(err as Error).message}`);
    settle.reject(error);
    return error;
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (options.signal?.aborted) throw options.signal.reason;
          const next = await pieces.next();
          if (next.done) {
            controller.close();
            settle.resolve({ narHash: sha256NixBase32(hash.digest()), narSize: size });
            return;
          }
          hash.update(next.value);
          size += next.value.length;
          controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.length));
        } catch (err) {
          controller.error(fail(err));
        }
      },
      async cancel() {
        await pieces.return(undefined);
      },
    },
    { highWaterMark: 4 },
  );
  return { stream, done };
}

function readableHere(storePath: string): boolean {
  try {
    accessSync(storePath, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function dumpNarWithNix(storePath: string, options: NixRunOptions): NarStream {
  const child = spawn("nix-store", ["--dump", storePath], { env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"], signal: options.signal });
  const hash = createHash("sha256");
  let size = 0;
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-16 * 1024);
  });
  let settle!: { resolve: (v: { narHash: string; narSize: number }) => void; reject: (e: Error) => void };
  const done = new Promise<{ narHash: string; narSize: number }>((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => {});
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  child.on("error", (err) => settle.reject(new NixCommandError(`cannot run nix-store --dump: ${err.message}`)));
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      child.stdout.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
        if ((controller.desiredSize ?? 1) <= 0) child.stdout.pause();
      });
      child.stdout.on("end", async () => {
        const code = await exited;
        if (code === 0) {
          controller.close();
          settle.resolve({ narHash: sha256NixBase32(hash.digest()), narSize: size });
        } else {
          const err = new NixCommandError(`nix-store --dump ${storePath} failed: ${stderr.trim() || `exit ${code}`}`);
          controller.error(err);
          settle.reject(err);
        }
      });
    },
    pull() {
      child.stdout.resume();
    },
    cancel() {
      child.kill();
    },
  }, { highWaterMark: 4 });
  return { stream, done };
}
