/** The closure a push starts from, with the registration Nix gave on the way: real Nix. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type BinaryCacheClient, closureWithInfos, pushClosure } from "../src/cache-client.ts";
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

  /** A client that records what it is asked; everything is missing, and uploadUnasked says the first path was there. */
  function recordingClient(unasked: boolean) {
    const calls: string[] = [];
    let uploadedInfos: ReadonlyMap<string, unknown> | undefined;
    const client: BinaryCacheClient = {
      cache: "rec",
      kind: "NimbusCache",
      push: true,
      substituter: "http://rec.invalid",
      missing: async (paths) => (calls.push(`missing ${paths.length}`), { missing: new Set(paths), failed: new Map() }),
      upload: async (paths, options) => {
        calls.push(`upload ${paths.length}`);
        uploadedInfos = options?.infos;
      },
      ...(unasked ? { uploadUnasked: async (paths: readonly string[]) => (calls.push(`unasked ${paths.join(" ")}`), { uploaded: paths.length - 1, alreadyPresent: 1 }) } : {}),
    };
    return { client, calls, infos: () => uploadedInfos };
  }

  it("pushClosure: a cache that answers presence on upload gets a closure of a few paths without being asked first", async () => {
    const rec = recordingClient(true);
    const result = await pushClosure(rec.client, [built.depOutPath], { what: "outputs", env });
    assert.deepEqual(rec.calls, [`unasked ${built.depOutPath}`]);
    assert.deepEqual(result, { cache: "rec", status: "pushed", pushed: 0, alreadyPresent: 1 }, "its own counts are the report");
  });

  it("pushClosure: a larger closure, or a cache without it, is asked first, and the upload gets the registration already read", async () => {
    const rec = recordingClient(true);
    await pushClosure(rec.client, [built.outPath], { what: "outputs", env });
    assert.deepEqual(rec.calls, ["missing 2", "upload 2"], "a closure beyond the roots: their registration is not all known");
    assert.ok(rec.infos()?.has(built.outPath) && rec.infos()?.has(built.depOutPath));
    const plain = recordingClient(false);
    const result = await pushClosure(plain.client, [built.depOutPath], { what: "outputs", env });
    assert.deepEqual(plain.calls, ["missing 1", "upload 1"]);
    assert.deepEqual(result, { cache: "rec", status: "pushed", pushed: 1, alreadyPresent: 0 });
  });

  it("a path not in the store is a clear error", async () => {
    await assert.rejects(closureWithInfos([`/nix/store/${"0".repeat(32)}-nimbus-absent`], { env }), /not valid in the local store|nix-store/);
  });
});
