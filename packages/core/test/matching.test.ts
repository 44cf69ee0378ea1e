import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canBuild, type BuilderCapabilities } from "../src/matching.ts";

const linux: BuilderCapabilities = { systems: ["x86_64-linux", "i686-linux"], supportedFeatures: ["kvm", "big-parallel"], mandatoryFeatures: [] };
const gpu: BuilderCapabilities = { systems: ["x86_64-linux"], supportedFeatures: ["cuda"], mandatoryFeatures: ["gpu"] };

describe("canBuild (Nix's machines.cc rule)", () => {
  const cases: Array<[string, BuilderCapabilities, string, string[], boolean]> = [
    ["native system, no features", linux, "x86_64-linux", [], true],
    ["extra platform", linux, "i686-linux", [], true],
    ["foreign system", linux, "aarch64-darwin", [], false],
    ["builtin runs anywhere", linux, "builtin", [], true],
    ["supported feature", linux, "x86_64-linux", ["kvm"], true],
    ["all supported features", linux, "x86_64-linux", ["kvm", "big-parallel"], true],
    ["missing feature", linux, "x86_64-linux", ["kvm", "gpu"], false],
    ["mandatory feature required", gpu, "x86_64-linux", ["gpu"], true],
    ["mandatory counts as supported", gpu, "x86_64-linux", ["gpu", "cuda"], true],
    ["mandatory feature not required", gpu, "x86_64-linux", [], false],
    ["mandatory not required, other supported", gpu, "x86_64-linux", ["cuda"], false],
    ["builtin still needs mandatory", gpu, "builtin", [], false],
    ["builtin with mandatory required", gpu, "builtin", ["gpu"], true],
  ];
  for (const [name, builder, system, requiredFeatures, expected] of cases) {
    it(`${name}: ${expected ? "may" : "may not"} build`, () => {
      assert.equal(canBuild(builder, { system, requiredFeatures }), expected);
    });
  }
});
