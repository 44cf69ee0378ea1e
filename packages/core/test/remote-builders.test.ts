import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canBuild, capabilitiesOf } from "../src/index.ts";

// An agent with remote builders (docs/agent.md, "Remote builders"): each machine is judged by
// Nix's rule on its own, mandatory features included.
const agent = {
  systems: ["x86_64-linux"],
  systemFeatures: ["big-parallel"],
  mandatoryFeatures: [],
  remoteBuilders: [
    { systems: ["aarch64-linux"], supportedFeatures: [], mandatoryFeatures: [] },
    { systems: ["x86_64-linux"], supportedFeatures: ["gpu"], mandatoryFeatures: ["gpu"] },
  ],
};
const caps = capabilitiesOf(agent);

describe("remote builders in Nix's rule", () => {
  it("takes what the agent's machine can build, and what one of its remotes can", () => {
    assert.ok(canBuild(caps, { system: "x86_64-linux", requiredFeatures: ["big-parallel"] }));
    assert.ok(canBuild(caps, { system: "aarch64-linux", requiredFeatures: [] }), "the aarch64 remote");
    assert.ok(canBuild(caps, { system: "x86_64-linux", requiredFeatures: ["gpu"] }), "the gpu remote");
  });

  it("never merges the machines: no one machine has both", () => {
    assert.ok(!canBuild(caps, { system: "x86_64-linux", requiredFeatures: ["big-parallel", "gpu"] }), "big-parallel is local, gpu remote");
    assert.ok(!canBuild(caps, { system: "aarch64-linux", requiredFeatures: ["gpu"] }), "gpu is on the x86_64 remote only");
    assert.ok(!canBuild(caps, { system: "i686-linux", requiredFeatures: [] }));
  });

  it("keeps a remote's mandatory features to itself", () => {
    const flat = capabilitiesOf({ ...agent, remoteBuilders: [] });
    assert.ok(!canBuild(flat, { system: "x86_64-linux", requiredFeatures: ["gpu"] }), "without the remote");
    // The gpu remote takes only gpu builds, yet the agent's own machine still takes the others.
    assert.ok(canBuild(caps, { system: "x86_64-linux", requiredFeatures: [] }));
  });
});
