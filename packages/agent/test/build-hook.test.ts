import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { declineHookArgs, keepBuildHook } from "../src/build-hook.ts";
import { runProcess } from "../src/process.ts";

const run = promisify(execFile);
const own = { buildHook: "/usr/libexec/nix/build-remote", store: "auto" };

describe("keepBuildHook", () => {
  it("replaces Nix's own build-remote (2.8's path, or newer Nix's `nix __build-remote`) when Nix has no remote builders and builds itself", () => {
    assert.equal(keepBuildHook(own, {}, true), undefined);
    assert.equal(keepBuildHook({ ...own, buildHook: "/nix/store/abc-nix-2.18/bin/nix __build-remote", remoteMachines: [] }, { NIX_REMOTE: "" }, true), undefined);
  });

  it("keeps it with remote builders, another hook, a daemon or a store it cannot write", () => {
    const machine = { uri: "ssh://b", systems: ["aarch64-linux"], supportedFeatures: [], mandatoryFeatures: [], maxJobs: 1 };
    assert.match(keepBuildHook({ ...own, remoteMachines: [machine] }, {}, true) ?? "", /remote builders/);
    assert.match(keepBuildHook({ ...own, buildHook: "/opt/my-hook" }, {}, true) ?? "", /not its own/);
    assert.match(keepBuildHook({ store: "auto" }, {}, true) ?? "", /not its own/);
    assert.match(keepBuildHook({ ...own, store: "daemon" }, {}, true) ?? "", /store is "daemon"/);
    assert.match(keepBuildHook(own, { NIX_REMOTE: "daemon" }, true) ?? "", /NIX_REMOTE/);
    assert.match(keepBuildHook(own, {}, false) ?? "", /daemon builds/);
  });
});

describe("declineHookArgs", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "nimbus-build-hook-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a private script that declines, and a real Nix build with it succeeds without build-remote", async () => {
    const { args, reason } = await declineHookArgs(own, dir, { NIX_STATE_DIR: dir });
    assert.equal(reason, undefined);
    assert.deepEqual(args, ["--option", "build-hook", path.join(dir, "nix-build-hook")]);
    assert.equal((await stat(args[2]!)).mode & 0o777, 0o700);
    const nonce = `${process.pid}-${Date.now()}`;
    const drv = (await run("nix-instantiate", ["--expr", `derivation { name = "nimbus-hook-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`])).stdout.trim();
    const built = await runProcess("nix-store", ["--realise", drv, "--option", "substituters", "", ...args, "--debug", "--no-gc-warning"]);
    assert.equal(built.code, 0, built.stderr.slice(-2000));
    assert.match(built.stderr, new RegExp(`starting build hook '${args[2]}'`));
    assert.match(built.stderr, /hook reply is 'decline-permanently'/);
    assert.doesNotMatch(built.stderr, /build-remote/);
  });

  it("passes nothing when Nix's hook stays", async () => {
    assert.deepEqual(await declineHookArgs({ ...own, store: "daemon" }, dir, { NIX_STATE_DIR: dir }), { args: [], reason: 'Nix\'s store is "daemon"' });
  });
});
