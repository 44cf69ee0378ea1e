import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FEATURE_SETS, generateChains, queueLabel, SYSTEMS } from "../bench/workload.ts";

describe("the bench's idle workload (chains)", () => {
  it("never has more than chainsPerQueue derivations of one queue ready at once", () => {
    const workload = generateChains({ chainsPerQueue: 2, length: 5, seed: 1 });
    assert.equal(workload.derivations.length, SYSTEMS.length * FEATURE_SETS.length * 2 * 5);
    // Ready at the start: the heads (no inputs); afterwards each build readies at most its one dependent.
    const heads = new Map<string, number>();
    const dependents = new Map<string, number>();
    for (const d of workload.derivations) {
      assert.ok(d.inputDrvs.length <= 1, "a chain link has at most one input");
      if (d.inputDrvs.length === 0) heads.set(queueLabel(d.system, d.requiredFeatures), (heads.get(queueLabel(d.system, d.requiredFeatures)) ?? 0) + 1);
      for (const input of d.inputDrvs) dependents.set(input, (dependents.get(input) ?? 0) + 1);
    }
    assert.deepEqual([...new Set(heads.values())], [2]);
    assert.ok([...dependents.values()].every((n) => n === 1), "one dependent each: ready work never fans out");
    assert.equal(workload.events.filter((e) => e.kind === "attribute").length, SYSTEMS.length * FEATURE_SETS.length * 2);
  });
});
