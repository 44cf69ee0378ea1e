/**
 * The NAR serialized in Node must be byte for byte what `nix-store --dump` writes, for every
 * kind of file a store path holds: built by real Nix, compared with Nix's own dump.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { dumpNar, localPathInfos } from "../src/local-store.ts";
import { NONCE, nixTestEnv, OFFLINE, run } from "./nix-fixtures.ts";

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function nixDump(storePath: string): Promise<Buffer> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve, reject) =>
    execFile("nix-store", ["--dump", storePath], { encoding: "buffer", maxBuffer: 64 * 2 ** 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}

// Every kind of node, names whose byte order differs from other orders, sizes around the 8-byte padding and a file larger than one read.
const TREE = [
  "set -e; M=/bin/mkdir; $M $out; cd $out",
  "$M -p dir/sub empty-dir 'B' a",
  "printf '' > empty; printf 1234567 > seven; printf 12345678 > eight; printf 123456789 > nine",
  "/usr/bin/head -c 700000 /dev/zero > big",
  "printf '#!/bin/sh\\n' > dir/run; /bin/chmod 755 dir/run",
  "/bin/ln -s dir/run link-relative; /bin/ln -s /nix/store link-absolute; /bin/ln -s missing dangling",
  "echo x > a.b; echo y > a-b; echo z > 'a b'; echo u > $(printf 'caf\\303\\251'); echo deep > dir/sub/file",
].join("; ");

describe("dumpNar (NARs serialized in Node)", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const built: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-nar-"));
    env = await nixTestEnv(dir);
    const file = path.join(dir, "nar.nix");
    await writeFile(
      file,
      `let mk = name: script: derivation { name = "nimbus-nar-\${name}"; nonce = "${NONCE}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
       in { tree = mk "tree" ${JSON.stringify(TREE)}; file = mk "file" "printf hello > $out"; exe = mk "exe" "printf '#!/bin/sh\\n' > $out; /bin/chmod 555 $out"; link = mk "link" "/bin/ln -s /nix/store $out"; }`,
    );
    for (const name of ["tree", "file", "exe", "link"]) {
      const drv = (await run("nix-instantiate", [...OFFLINE, file, "-A", name], { env })).trim();
      built[name] = (await run("nix-store", [...OFFLINE, "--realise", drv], { env })).trim();
    }
    built["drv"] = (await run("nix-instantiate", [...OFFLINE, file, "-A", "tree"], { env })).trim();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const name of ["tree", "file", "exe", "link", "drv"]) {
    it(`writes the same bytes as nix-store --dump, with the registered hash and size: ${name}`, async () => {
      const storePath = built[name]!;
      const { stream, done } = dumpNar(storePath, { env });
      const ours = await bytesOf(stream);
      assert.ok(ours.equals(await nixDump(storePath)), `the NAR of ${storePath} differs from nix-store --dump's`);
      const info = (await localPathInfos([storePath], { env })).get(storePath)!;
      assert.deepEqual(await done, { narHash: info.narHash, narSize: info.narSize });
    });
  }

  it("fails with a clear error for a path that is nowhere", async () => {
    const { stream, done } = dumpNar(`/nix/store/${"0".repeat(32)}-nimbus-nar-absent`, { env });
    await assert.rejects(bytesOf(stream), /nix-store --dump .*absent.* failed/);
    await assert.rejects(done, /nix-store --dump .*absent.* failed/);
  });
});
