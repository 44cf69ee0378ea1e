import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { DEFAULT_NIXPKGS_SHAPE, generateNixpkgsGraph, longestChain, NIXPKGS_SYSTEMS, type NixpkgsGraph } from "../bench/nixpkgs-graph.ts";
import { NIXPKGS_AGENTS, nixpkgsWorkload, someAgentBuilds } from "../bench/scenario-nixpkgs.ts";

describe("the bench's nixpkgs-like graph", () => {
  let full: NixpkgsGraph;
  before(() => {
    full = generateNixpkgsGraph(DEFAULT_NIXPKGS_SHAPE); // 100,000 derivations
  });

  it("has the derivations asked for, 20 deep, over five systems", () => {
    assert.equal(full.derivations.length, 100_000);
    assert.equal(longestChain(full.derivations), 20);
    assert.deepEqual(new Set(full.derivations.map((d) => d.system)), new Set(NIXPKGS_SYSTEMS.map((s) => s.system)));
  });

  it("has hubs with 10,000+ dependents at 100,000 derivations, counted from the inputs themselves", () => {
    const dependents = new Map<string, number>();
    for (const d of full.derivations) for (const input of d.inputDrvs) dependents.set(input, (dependents.get(input) ?? 0) + 1);
    const big = [...dependents.values()].filter((n) => n >= 10_000);
    assert.ok(big.length >= 3, `hubs with 10,000+ dependents: ${big.length}`);
    for (const [hub, count] of full.hubDependents) assert.equal(dependents.get(hub) ?? 0, count, `the reported count of ${hub}`);
  });

  it("requires some features, Linux-only ones only on Linux", () => {
    const kvm = full.derivations.filter((d) => d.requiredFeatures.includes("kvm"));
    const bigParallel = full.derivations.filter((d) => d.requiredFeatures.includes("big-parallel"));
    assert.ok(kvm.length > 100 && bigParallel.length > 1000, `kvm ${kvm.length}, big-parallel ${bigParallel.length}`);
    assert.ok(kvm.every((d) => d.system.endsWith("-linux")));
  });

  it("lists inputs before their dependents, of the same system, without repeats", () => {
    const graph = generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations: 3000 });
    const seen = new Map<string, string>();
    for (const d of graph.derivations) {
      assert.equal(new Set(d.inputDrvs).size, d.inputDrvs.length);
      for (const input of d.inputDrvs) assert.equal(seen.get(input), d.system, `${d.drvPath}'s input ${input}`);
      seen.set(d.drvPath, d.system);
    }
    assert.equal(seen.size, 3000, "drv paths are unique");
    assert.equal(longestChain(graph.derivations), 20, "the depth holds at small sizes too");
    const attributes = graph.events.filter((e) => e.kind === "attribute");
    assert.ok(attributes.length > 1000 && attributes.length < 2000, `attributes: ${attributes.length}`);
  });

  it("is the same graph for the same seed, another for another", () => {
    const a = generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations: 500 });
    const b = generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations: 500 });
    const c = generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations: 500, seed: 1 });
    assert.deepEqual(a.events, b.events);
    assert.notDeepEqual(a.events, c.events);
  });

  it("refuses a size too small for its shape", () => {
    assert.throws(() => generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations: 10 }), /needs at least \d+ derivations, not 10/);
    assert.throws(() => generateNixpkgsGraph({ ...DEFAULT_NIXPKGS_SHAPE, derivations: 1000, depth: 2 }), /depth must be an integer of at least 3/);
  });

  it("is a workload the nixpkgs scenario's agents can build all of, every queue of it named", () => {
    const { workload, shape } = nixpkgsWorkload(100_000, DEFAULT_NIXPKGS_SHAPE.seed);
    const unbuildable = workload.derivations.filter((d) => !someAgentBuilds(NIXPKGS_AGENTS, d.system, d.requiredFeatures));
    assert.deepEqual(unbuildable.map((d) => d.drvPath), []);
    assert.equal(workload.queues.length, new Set(workload.derivations.map((d) => [d.system, ...d.requiredFeatures].join("+"))).size);
    assert.ok(workload.queues.includes("x86_64-linux+kvm+nixos-test") && workload.queues.includes("i686-linux"), workload.queues.join(", "));
    assert.equal(shape.derivations + shape.attributes, workload.events.length);
    assert.ok(shape.largestHubDependents[0]! >= 10_000, `largest hub: ${shape.largestHubDependents[0]}`);
    // Nix's rule, as the scenario's check reads it: a feature the agent lacks, or another system, rules it out.
    assert.equal(someAgentBuilds([{ name: "a", systems: ["x86_64-linux"], systemFeatures: ["kvm"], concurrentTasks: 1 }], "x86_64-linux", ["kvm", "nixos-test"]), false);
    assert.equal(someAgentBuilds([{ name: "a", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 1 }], "i686-linux", []), false);
  });
});
