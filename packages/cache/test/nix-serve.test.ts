/**
 * Path registration from one long-lived `nix-store --serve` (nix-serve.ts), against real Nix:
 * the same as `nix-store --dump-db` says, the store as it is at each query (a path deleted or
 * built since), queries one at a time however many are asked at once, and a child that is gone
 * answered undefined — the caller then asks `nix-store --dump-db` — and started again.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { closureWithInfos } from "../src/cache-client.ts";
import { type LocalPathInfo, localPathInfos } from "../src/local-store.ts";
import { NixServePathInfos } from "../src/nix-serve.ts";
import { type Built, buildPair, markerDir, nixTestEnv, OFFLINE, run } from "./nix-fixtures.ts";

describe("NixServePathInfos", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let built: Built;
  let serve: NixServePathInfos;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-serve-"));
    env = await nixTestEnv(dir);
    built = await buildPair(dir, "serve", await markerDir(), env);
    serve = new NixServePathInfos(env);
  });
  after(async () => {
    serve.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("says what nix-store --dump-db says of outputs and a .drv, references and deriver included", async () => {
    const paths = [built.outPath, built.depOutPath, built.drvPath];
    const served = await serve.pathInfos(paths);
    const dumped = await localPathInfos(paths, { env });
    assert.ok(served);
    for (const p of paths) {
      const a: LocalPathInfo = served.get(p)!;
      const b: LocalPathInfo = dumped.get(p)!;
      assert.deepEqual({ ...a, references: [...a.references].sort() }, { ...b, references: [...b.references].sort() }, p);
    }
    assert.deepEqual(served.get(built.outPath)!.references, [built.depOutPath]);
    assert.equal(served.get(built.outPath)!.deriver, built.drvPath);
  });

  it("answers from the store as it is now: a path deleted since is left out, and there again once built", async () => {
    assert.ok((await serve.pathInfos([built.outPath]))?.has(built.outPath));
    await run("nix-store", ["--delete", built.outPath], { env });
    const now = await serve.pathInfos([built.outPath, built.depOutPath]);
    assert.deepEqual([...(now?.keys() ?? [])], [built.depOutPath], "the deleted path is not valid any more");
    await assert.rejects(localPathInfos([built.outPath], { env, pathInfos: serve }), /is not valid/);
    await run("nix-store", ["--realise", built.drvPath, ...OFFLINE], { env });
    assert.ok((await serve.pathInfos([built.outPath]))?.has(built.outPath));
  });

  it("answers each of many queries asked at once with its own paths", async () => {
    const paths = [built.outPath, built.depOutPath, built.drvPath];
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => serve.pathInfos([paths[i % 3]!])));
    answers.forEach((answer, i) => assert.deepEqual([...(answer?.keys() ?? [])], [paths[i % 3]]));
  });

  it("a child that is gone answers undefined (localPathInfos asks nix-store --dump-db then), and the next query starts another; closed, it answers nothing", async () => {
    const own = new NixServePathInfos(env);
    assert.ok((await own.pathInfos([built.depOutPath]))?.has(built.depOutPath));
    // Its child is the newest: the shared one above started first.
    const child = (await run("pgrep", ["-n", "-f", "-P", String(process.pid), "nix-store --serve"])).trim();
    process.kill(Number(child), "SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await own.pathInfos([built.depOutPath]), undefined);
    assert.ok((await localPathInfos([built.depOutPath], { env, pathInfos: own })).has(built.depOutPath), "asked of nix-store --dump-db");
    assert.ok((await own.pathInfos([built.depOutPath]))?.has(built.depOutPath), "a new child answers");
    own.close();
    assert.equal(await own.pathInfos([built.depOutPath]), undefined);
  });

  it("localPathInfos and a push's closure ask it, and start no Nix process when it answers", async () => {
    const noNix = { ...env, PATH: dir };
    const infos = await localPathInfos([built.outPath, built.depOutPath], { env: noNix, pathInfos: serve });
    assert.deepEqual([...infos.keys()].sort(), [built.depOutPath, built.outPath].sort());
    const { closure } = await closureWithInfos([built.outPath, built.depOutPath], { env: noNix, pathInfos: serve });
    assert.deepEqual([...closure].sort(), [built.depOutPath, built.outPath].sort());
    await assert.rejects(localPathInfos([built.outPath], { env: noNix }), /nix-store not found/, "without it, Nix is started");
  });
});

