/** The closure a push starts from, with the registration Nix gave on the way: real Nix. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { closureWithInfos } from "../src/cache-client.ts";
import { localPathInfos, storeClosure } from "../src/local-store.ts";
import { type Built, buildPair, markerDir, nixTestEnv } from "./nix-fixtures.ts";

describe("closureWithInfos", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let built: Built;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-closure-"));
    env = await nixTestEnv(dir);
    built = await buildPair(dir, "closure", await markerDir(), env);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("a path that refers to nothing else is its own closure, with its registration", async () => {
    const { closure, infos } = await closureWithInfos([built.depOutPath], { env });
    assert.deepEqual(closure, [built.depOutPath]);
    assert.deepEqual(infos.get(built.depOutPath), (await localPathInfos([built.depOutPath], { env })).get(built.depOutPath));
  });

  it("a path that refers to others gets its whole closure, as nix-store --query --requisites gives it", async () => {
    const { closure, infos } = await closureWithInfos([built.outPath], { env });
    assert.deepEqual([...closure].sort(), [...(await storeClosure([built.outPath], { env }))].sort());
    assert.ok(closure.includes(built.depOutPath));
    assert.ok(infos.has(built.outPath));
  });

  it("roots that refer only to each other are the closure", async () => {
    const { closure } = await closureWithInfos([built.outPath, built.depOutPath, built.outPath], { env });
    assert.deepEqual([...closure].sort(), [built.depOutPath, built.outPath].sort());
  });

  it("a path not in the store is a clear error", async () => {
    await assert.rejects(closureWithInfos([`/nix/store/${"0".repeat(32)}-nimbus-absent`], { env }), /not valid in the local store|nix-store/);
  });
});
