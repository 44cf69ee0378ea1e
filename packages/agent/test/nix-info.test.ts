import assert from "node:assert/strict";
import os from "node:os";
import { describe, it } from "node:test";
import { AgentInfo, NIMBUS_VERSION } from "@nimbus/protocol";
import {
  AgentFatalError,
  buildAgentInfo,
  detectNix,
  NIX_NOT_FOUND_MESSAGE,
  type NixInfo,
  parseAgentConfig,
  parseNixVersion,
} from "../src/index.ts";

const config = (extra = "") =>
  parseAgentConfig(`apiBaseUrl = "http://127.0.0.1:4800"\nclusterJoinTokenPath = "t"\n${extra}`, "/etc/nimbus");

describe("detectNix", () => {
  it("reports this machine's systems, features, substituters and version", async () => {
    const nix = await detectNix();
    assert.equal(nix.systems[0], "x86_64-linux", "Nix's own system first");
    assert.ok(nix.systems.includes("i686-linux"), "extra-platforms follow");
    assert.equal(new Set(nix.systems).size, nix.systems.length, "no duplicates");
    assert.ok(nix.systemFeatures.length > 0);
    assert.ok(nix.substituters.every((s) => s.length > 0));
    assert.match(nix.nixVersion, /^\d+\.\d+(\.\d+)?/);
  });

  it("applies nixSettings as Nix would", async () => {
    const nix = await detectNix({ nixSettings: { "extra-system-features": "gpu", "extra-platforms": "x86_64-linux aarch64-linux" } });
    assert.ok(nix.systemFeatures.includes("gpu"), nix.systemFeatures.join(" "));
    assert.equal(nix.systems.filter((s) => s === "x86_64-linux").length, 1, "system listed once even if also an extra platform");
    assert.ok(nix.systems.includes("aarch64-linux"));
  });

  it("says how to install Nix when it is missing", async () => {
    await assert.rejects(detectNix({ nixBinary: "/nonexistent/bin/nix" }), (err: unknown) => {
      assert.ok(err instanceof AgentFatalError);
      assert.equal(err.code, "nix-not-found");
      assert.equal(err.message, NIX_NOT_FOUND_MESSAGE);
      assert.match(err.message, /apt-get install -y nix-bin/);
      return true;
    });
  });

  it("reads the version out of `nix --version`", () => {
    assert.equal(parseNixVersion("nix (Nix) 2.8.0\n"), "2.8.0");
    assert.equal(parseNixVersion("nix (Nix) 2.24.10pre20241110_dirty\n"), "2.24.10pre20241110_dirty");
    assert.equal(parseNixVersion("nix (Lix, like Nix) 2.91.1\nSystem type: x86_64-linux"), "2.91.1");
  });
});

describe("buildAgentInfo", () => {
  const nix: NixInfo = {
    nixVersion: "2.8.0",
    systems: ["x86_64-linux", "i686-linux"],
    systemFeatures: ["kvm", "big-parallel"],
    substituters: ["https://cache.nixos.org/"],
  };

  it("takes what Nix reports when the config says nothing", () => {
    const info = buildAgentInfo(config("concurrentTasks = 2"), nix, "builder-1");
    assert.deepEqual(info, {
      hostname: "builder-1",
      agentVersion: NIMBUS_VERSION,
      nixVersion: "2.8.0",
      systems: ["x86_64-linux", "i686-linux"],
      systemFeatures: ["kvm", "big-parallel"],
      mandatoryFeatures: [],
      substituters: ["https://cache.nixos.org/"],
      pushCaches: [],
      concurrentTasks: 2,
      labels: {},
    });
    AgentInfo.parse(info);
  });

  it("lets the config's systems, features and mandatory features win", () => {
    const info = buildAgentInfo(
      config(
        'systems = ["aarch64-linux"]\nsystemFeatures = ["gpu"]\nmandatoryFeatures = ["gpu"]\nremotePlatformsWithSameFeatures = ["x86_64-darwin", "aarch64-linux"]',
      ),
      nix,
    );
    assert.deepEqual(info.systems, ["aarch64-linux", "x86_64-darwin"]);
    assert.deepEqual(info.systemFeatures, ["gpu"]);
    assert.deepEqual(info.mandatoryFeatures, ["gpu"]);
    assert.equal(info.hostname, os.hostname());
  });

  it("adds remote platforms to what Nix reports", () => {
    const info = buildAgentInfo(config('remotePlatformsWithSameFeatures = ["aarch64-linux"]'), nix);
    assert.deepEqual(info.systems, ["x86_64-linux", "i686-linux", "aarch64-linux"]);
  });

  it("refuses what the protocol cannot carry, saying which field", () => {
    assert.throws(
      () => buildAgentInfo(config(), { ...nix, systems: ["not a system"] }),
      (err: unknown) => err instanceof AgentFatalError && err.code === "invalid-agent-info" && /systems/.test(err.message),
    );
  });
});
