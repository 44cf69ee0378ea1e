import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CAPABILITY_SHARDS,
  capabilityClassOf,
  capabilityKey,
  capabilityKeysOf,
  classesServing,
  classesToWake,
  shardOf,
} from "../src/capability-class.ts";

const agent = (systems: string[], systemFeatures: string[] = [], mandatoryFeatures: string[] = [], remoteBuilders?: { systems: string[]; supportedFeatures: string[]; mandatoryFeatures: string[] }[]) => ({
  systems,
  systemFeatures,
  mandatoryFeatures,
  ...(remoteBuilders ? { remoteBuilders } : {}),
});

describe("capabilityClassOf", () => {
  it("gives agents that can build the same things one class, whatever the order or repetition of their lists", () => {
    const a = capabilityClassOf(agent(["x86_64-linux", "i686-linux"], ["kvm", "big-parallel"]));
    const b = capabilityClassOf(agent(["i686-linux", "x86_64-linux", "x86_64-linux"], ["big-parallel", "kvm", "kvm"]));
    assert.equal(a.classId, b.classId);
    assert.deepEqual(a.capabilities.systems, ["i686-linux", "x86_64-linux"]);
  });

  it("tells apart systems, supported features, mandatory features and remote builders", () => {
    const ids = new Set(
      [
        agent(["x86_64-linux"]),
        agent(["aarch64-linux"]),
        agent(["x86_64-linux"], ["kvm"]),
        agent(["x86_64-linux"], [], ["kvm"]),
        agent(["x86_64-linux"], [], [], [{ systems: ["aarch64-linux"], supportedFeatures: [], mandatoryFeatures: [] }]),
      ].map((a) => capabilityClassOf(a).classId),
    );
    assert.equal(ids.size, 5);
  });

  it("ignores the order of remote builders", () => {
    const r1 = { systems: ["aarch64-linux"], supportedFeatures: [], mandatoryFeatures: [] };
    const r2 = { systems: ["riscv64-linux"], supportedFeatures: ["kvm"], mandatoryFeatures: [] };
    assert.equal(capabilityClassOf(agent(["x86_64-linux"], [], [], [r1, r2])).classId, capabilityClassOf(agent(["x86_64-linux"], [], [], [r2, r1])).classId);
  });
});

describe("shards", () => {
  it("puts a session in one fixed shard, and spreads sessions over all of them", () => {
    assert.equal(shardOf("session-1"), shardOf("session-1"));
    const seen = new Set(Array.from({ length: 200 }, (_, i) => shardOf(`session-${i}`)));
    assert.equal(seen.size, CAPABILITY_SHARDS);
    for (const shard of seen) assert.ok(shard >= 0 && shard < CAPABILITY_SHARDS);
  });

  it("names every partition of a class", () => {
    assert.deepEqual(capabilityKeysOf("c1"), Array.from({ length: CAPABILITY_SHARDS }, (_, i) => capabilityKey("c1", i)));
    assert.equal(new Set(capabilityKeysOf("c1")).size, CAPABILITY_SHARDS);
  });
});

describe("which classes to read", () => {
  const linux = capabilityClassOf(agent(["x86_64-linux"]));
  const linuxBig = capabilityClassOf(agent(["x86_64-linux"], ["big-parallel"]));
  const kvmOnly = capabilityClassOf(agent(["x86_64-linux"], [], ["kvm"]));
  const arm = capabilityClassOf(agent(["aarch64-linux"]));
  const classes = [linux, linuxBig, kvmOnly, arm];

  it("serving a build: Nix's rule, mandatory features included", () => {
    assert.deepEqual(classesServing(classes, { system: "x86_64-linux", requiredFeatures: [] }), [linux, linuxBig]);
    assert.deepEqual(classesServing(classes, { system: "x86_64-linux", requiredFeatures: ["big-parallel"] }), [linuxBig]);
    assert.deepEqual(classesServing(classes, { system: "x86_64-linux", requiredFeatures: ["kvm"] }), [kvmOnly]);
    assert.deepEqual(classesServing(classes, { system: "riscv64-linux", requiredFeatures: [] }), []);
  });

  it("to wake: those serving any of the queues, or every class for an evaluation", () => {
    assert.deepEqual(classesToWake(classes, { queueKeys: new Set(["aarch64-linux|"]), evaluations: false }), [arm]);
    assert.deepEqual(classesToWake(classes, { queueKeys: new Set(["aarch64-linux|", "x86_64-linux|big-parallel"]), evaluations: false }), [linuxBig, arm]);
    assert.deepEqual(classesToWake(classes, { queueKeys: new Set(), evaluations: true }), classes);
    assert.deepEqual(classesToWake(classes, { queueKeys: new Set(), evaluations: false }), []);
  });
});
