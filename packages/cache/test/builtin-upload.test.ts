/**
 * What an upload to the built-in cache puts: the path's NAR, zstd-compressed — in memory for a
 * small NAR, through a temporary file for a large one — with the NAR's size in the frame header
 * (zstd was told it, so it sized its window to it), and nothing left behind. A NAR that is not
 * what Nix registered is refused, never uploaded.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http from "node:http";
import { readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { zstdDecompressSync } from "node:zlib";
import type { UploadedPath, UploadFile } from "@nimbus/protocol";
import { IN_MEMORY_NAR_BYTES, type LocalPathInfo, localPathInfos, sha256NixBase32, uploadToBuiltinCache } from "../src/index.ts";
import { NONCE, OFFLINE, run, tmpRoot } from "./nix-fixtures.ts";

/** The content size a zstd frame header declares, or undefined when it declares none (RFC 8878, 3.1.1.1). */
function frameContentSize(frame: Buffer): number | undefined {
  assert.equal(frame.readUInt32LE(0), 0xfd2fb528, "a zstd frame");
  const descriptor = frame[4]!;
  const singleSegment = (descriptor >> 5) & 1;
  const flag = descriptor >> 6;
  const size = flag === 0 ? singleSegment : [1, 2, 4, 8][flag]!;
  if (size === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]!;
  if (size === 1) return frame[at];
  if (size === 2) return frame.readUInt16LE(at) + 256;
  if (size === 4) return frame.readUInt32LE(at);
  return Number(frame.readBigUInt64LE(at));
}

let dir: string;
let server: http.Server;
let url: string;
const bodies = new Map<string, Buffer>();
let small: string;
let large: string;

async function built(name: string, script: string): Promise<string> {
  const file = path.join(dir, `${name}.nix`);
  await writeFile(file, `derivation { name = "nimbus-upload-${name}-${NONCE}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "${script}" ]; }`);
  const drv = (await run("nix-instantiate", [...OFFLINE, file])).trim();
  return (await run("nix-store", [...OFFLINE, "--realise", drv])).trim();
}

before(async () => {
  dir = await tmpRoot();
  server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      bodies.set(request.url!.slice(1), Buffer.concat(chunks));
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  small = await built("small", "echo small > $out");
  // Above the in-memory bound: compressed through a temporary file.
  large = await built("large", `/bin/mkdir $out; /bin/dd if=/dev/zero of=$out/zeros bs=1024 count=${IN_MEMORY_NAR_BYTES / 1024 + 64} 2>/dev/null; echo large > $out/name`);
});
after(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

/** A channel that hands out an upload URL for every file, then publishes what it is told. */
function channel(seen: { files: UploadFile[]; completed: UploadedPath[] }) {
  return {
    requestUploads: async (files: UploadFile[]) => {
      seen.files.push(...files);
      return files.map((f) => ({ storePath: f.storePath, status: "upload" as const, url: `${url}/${path.basename(f.storePath)}`, headers: {} }));
    },
    complete: async (paths: UploadedPath[]) => {
      seen.completed.push(...paths);
      return paths.map((p) => ({ storePath: p.storePath, status: "published" as const }));
    },
  };
}

describe("uploads to the built-in cache", () => {
  it("puts each NAR compressed, small in memory and large through a file, its size in the zstd header, and leaves no file behind", async () => {
    const infos = await localPathInfos([small, large]);
    assert.ok(infos.get(small)!.narSize <= IN_MEMORY_NAR_BYTES && infos.get(large)!.narSize > IN_MEMORY_NAR_BYTES);
    const tempDir = path.join(dir, "uploads");
    const seen = { files: [] as UploadFile[], completed: [] as UploadedPath[] };
    const counts = await uploadToBuiltinCache([small, large], infos, channel(seen), { tempDir });
    assert.deepEqual(counts, { uploaded: 2, alreadyPresent: 0 });
    for (const storePath of [small, large]) {
      const body = bodies.get(path.basename(storePath))!;
      const nar = Buffer.from((await run("bash", ["-c", `nix-store --dump ${storePath} | base64 -w0`])).trim(), "base64");
      assert.deepEqual(zstdDecompressSync(body), nar, `${storePath}: the NAR, compressed`);
      assert.equal(frameContentSize(body), infos.get(storePath)!.narSize, `${storePath}: the frame says the NAR's size`);
      const file = seen.files.find((f) => f.storePath === storePath)!;
      assert.deepEqual([file.fileSize, file.fileHash, file.compression], [body.length, sha256NixBase32(createHash("sha256").update(body).digest()), "zstd"]);
    }
    assert.deepEqual(await readdir(tempDir), [], "no compressed NAR is left");
  });

  it("refuses a NAR that is not what Nix registered, small or large, and uploads nothing", async () => {
    const infos = await localPathInfos([small, large]);
    for (const [storePath, change] of [
      [small, { narSize: infos.get(small)!.narSize - 8 }],
      [small, { narSize: infos.get(small)!.narSize + 8 }],
      [small, { narHash: infos.get(large)!.narHash }],
      [large, { narSize: infos.get(large)!.narSize - 8 }],
      [large, { narHash: infos.get(small)!.narHash }],
    ] as Array<[string, Partial<LocalPathInfo>]>) {
      const seen = { files: [] as UploadFile[], completed: [] as UploadedPath[] };
      const wrong = new Map([[storePath, { ...infos.get(storePath)!, ...change }]]);
      await assert.rejects(uploadToBuiltinCache([storePath], wrong, channel(seen), { tempDir: path.join(dir, "uploads") }), /does not match its registered hash/);
      assert.deepEqual(seen.files, [], `${JSON.stringify(change)}: nothing asked for`);
    }
  });
});
