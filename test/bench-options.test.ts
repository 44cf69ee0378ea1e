import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BenchOptionsError, DEFAULT_SCENARIOS, parseBenchOptions, parseScenarios, SCENARIOS } from "../bench/bench-options.ts";

describe("bench options", () => {
  it("runs the default set when no scenario is named", () => {
    assert.deepEqual(parseScenarios([], undefined), [...DEFAULT_SCENARIOS]);
    assert.deepEqual(parseScenarios([], " "), [...DEFAULT_SCENARIOS]);
    // A whole nixpkgs-shaped job takes minutes: only when named (or "all").
    assert.ok(!DEFAULT_SCENARIOS.includes("nixpkgs"));
    assert.deepEqual(parseScenarios(["nixpkgs"], undefined), ["nixpkgs"]);
  });

  it("takes names from the arguments before the variable, in the documented order", () => {
    assert.deepEqual(parseScenarios(["realnix", "idle"], "ingest"), ["idle", "realnix"]);
    assert.deepEqual(parseScenarios([], "ingest, agents1000"), ["ingest", "agents1000"]);
    assert.deepEqual(parseScenarios(["all"], undefined), [...SCENARIOS]);
  });

  it("refuses an unknown scenario, naming the valid ones", () => {
    assert.throws(() => parseScenarios(["saturatd"], undefined), (e: unknown) => e instanceof BenchOptionsError && /saturatd.*saturated, idle, ingest, agents1000, realnix/.test(e.message));
  });

  it("reads sizes from NIMBUS_BENCH_* and refuses bad ones by name", () => {
    const options = parseBenchOptions(["ingest"], { NIMBUS_BENCH_INGEST_DERIVATIONS: "100000", NIMBUS_BENCH_AGENT_COUNTS: "10, 100,1000" });
    assert.equal(options.ingest.derivations, 100_000);
    assert.deepEqual(options.agents.sizes, [10, 100, 1000]);
    assert.throws(() => parseBenchOptions([], { NIMBUS_BENCH_REALNIX_N: "many" }), /NIMBUS_BENCH_REALNIX_N must be a whole number of at least 1, not "many"/);
    assert.throws(() => parseBenchOptions([], { NIMBUS_BENCH_DERIVATIONS: "2.5" }), /NIMBUS_BENCH_DERIVATIONS/);
    assert.throws(() => parseBenchOptions([], { NIMBUS_BENCH_AGENT_COUNTS: "10,0" }), /NIMBUS_BENCH_AGENT_COUNTS must be agent counts/);
    assert.equal(parseBenchOptions(["nixpkgs"], {}).nixpkgs.derivations, 10_000);
    assert.equal(parseBenchOptions(["nixpkgs"], { NIMBUS_BENCH_NIXPKGS_DERIVATIONS: "100000" }).nixpkgs.derivations, 100_000);
    assert.throws(() => parseBenchOptions([], { NIMBUS_BENCH_NIXPKGS_DERIVATIONS: "39" }), /NIMBUS_BENCH_NIXPKGS_DERIVATIONS must be a whole number of at least 40, not "39"/);
  });
});
