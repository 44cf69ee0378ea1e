import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { effectEnvironment, effectMounts, MountRefusedError, sandboxCommand } from "../src/effect-sandbox.ts";

// The effect sandbox's rules (docs/effects.md, "The sandbox"): mounts as Hercules checks them, the command line, the environment.
const main = { owner: "acme", repo: "widgets", ref: "refs/heads/main", isDefaultBranch: true };
const feature = { ...main, ref: "refs/heads/feature", isDefaultBranch: false };
const mountables = {
  target: { source: "/srv/deploy", readOnly: false, condition: "isDefaultBranch" as const },
  docs: { source: "/srv/docs", readOnly: true, condition: true },
};

describe("effect mounts", () => {
  it("gives the mountables an effect asks for whose condition holds", () => {
    assert.deepEqual(effectMounts(JSON.stringify({ "/deploy": "target", "/docs": "docs" }), mountables, main), [
      { path: "/deploy", source: "/srv/deploy", readOnly: false },
      { path: "/docs", source: "/srv/docs", readOnly: true },
    ]);
    assert.deepEqual(effectMounts(undefined, mountables, main), []);
  });

  it("refuses a mountable whose condition does not hold, or that does not exist, alike", () => {
    assert.throws(() => effectMounts(JSON.stringify({ "/deploy": "target" }), mountables, feature), /no such mountable .*or its condition does not allow it for acme\/widgets at refs\/heads\/feature/);
    assert.throws(() => effectMounts(JSON.stringify({ "/deploy": "nope" }), mountables, main), MountRefusedError);
  });

  it("refuses paths that are not canonical or cover the sandbox's own", () => {
    for (const path of ["relative", "/a/../b", "/a//b", "/nix/store/x", "/secrets", "/build/x", "/"]) {
      assert.throws(() => effectMounts(JSON.stringify({ [path]: "docs" }), mountables, main), MountRefusedError, path);
    }
    assert.throws(() => effectMounts("{", mountables, main), /not JSON/);
  });
});

describe("the sandbox command", () => {
  const plan = {
    bwrap: "bwrap",
    build: "/var/lib/agent/work/effect/t/build",
    etc: "/var/lib/agent/work/effect/t/etc",
    secrets: "/var/lib/agent/work/effect/t/secrets",
    mounts: [{ path: "/deploy", source: "/srv/deploy", readOnly: false }],
    builder: "/nix/store/abc-bash/bin/bash",
    args: ["-e", "/nix/store/def-builder.sh"],
    derivationEnv: { out: "/nix/store/ghi-effect", secretsMap: '{"token":"deploy"}', PATH: "/nix/store/jkl/bin", HERCULES_CI_SECRETS_JSON: "/elsewhere" },
    apiBaseUrl: "https://nimbus.example",
  };

  it("binds only the store, the system directories, its own directories and its mounts, with the network", () => {
    const { command, args } = sandboxCommand(plan);
    assert.equal(command, "bwrap");
    assert.ok(args.includes("--unshare-all") && args.includes("--share-net") && args.includes("--die-with-parent") && args.includes("--clearenv"));
    const binds = [];
    for (let i = 0; i < args.length; i++) if (/^--(ro-)?bind(-try)?$/.test(args[i]!)) binds.push([args[i], args[i + 1], args[i + 2]]);
    const targets = binds.map((b) => b[2]);
    assert.deepEqual(targets.filter((t) => !/^\/(bin|sbin|usr|lib|lib32|lib64)$|^\/etc\/(resolv\.conf|hosts|nsswitch\.conf)$/.test(t!)), ["/nix/store", "/build", "/etc", "/secrets", "/deploy"]);
    assert.deepEqual(binds.find((b) => b[2] === "/secrets"), ["--ro-bind", plan.secrets, "/secrets"]);
    assert.deepEqual(binds.find((b) => b[2] === "/nix/store"), ["--ro-bind", "/nix/store", "/nix/store"]);
    assert.ok(!binds.some((b) => b[1]?.startsWith("/var/lib/agent") && !b[1].startsWith("/var/lib/agent/work/effect/t/")), "nothing else of the agent's");
    assert.deepEqual(args.slice(args.indexOf("--") + 1), [plan.builder, ...plan.args]);
  });

  it("sets Hercules' environment: the derivation's, then what the sandbox fixes", () => {
    const env = effectEnvironment(plan);
    assert.equal(env.HERCULES_CI_SECRETS_JSON, "/secrets/secrets.json", "the sandbox's secrets file wins");
    assert.equal(env.PATH, "/nix/store/jkl/bin", "the derivation's own PATH");
    assert.equal(env.IN_HERCULES_CI_EFFECT, "true");
    assert.equal(env.HERCULES_CI_API_BASE_URL, "https://nimbus.example");
    assert.equal(env.TMPDIR, "/build");
    assert.equal(env.out, "/nix/store/ghi-effect");
    assert.equal(effectEnvironment({ ...plan, derivationEnv: {} }).PATH, "/path-not-set", "as in a Nix build");
  });
});
