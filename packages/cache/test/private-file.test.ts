import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { it } from "node:test";
import { withPrivateFile } from "../src/private-file.ts";

it("a secret file is 0600 in a 0700 directory while in use, and gone afterwards — also when the command fails", async () => {
  const parent = await mkdtemp(path.join(os.tmpdir(), "nimbus-private-"));
  try {
    let seen = "";
    await withPrivateFile("secret-key-text\n", async (file) => {
      seen = file;
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
      assert.equal(await readFile(file, "utf8"), "secret-key-text\n");
      assert.ok(file.startsWith(parent));
    }, parent);
    await assert.rejects(stat(seen), /ENOENT/);
    await assert.rejects(withPrivateFile("x", async () => { throw new Error("nix copy failed"); }, parent), /nix copy failed/);
    assert.deepEqual(await (await import("node:fs/promises")).readdir(parent), []);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});
