import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DerivationStatus } from "@nimbus/protocol";
import { advanceWaiting, dependentMoves, inputStatusFor, staleDependencyFailure, intrinsicConflict, isReadyToQueue, mayBeReady, partRegistration, registrationStep, type RegistrationStep } from "../src/settle.ts";

describe("dependentMoves: what a settled derivation does to its dependents", () => {
  const cases: Array<[DerivationStatus, string]> = [
    ["succeeded", "clear-input"],
    ["failed", "fail-dependent"],
    ["dependency-failed", "fail-dependent"],
  ];
  for (const [status, type] of cases) {
    it(`${status} → ${type} for each dependent`, () => {
      const moves = dependentMoves({ drvPath: "a", status }, ["b", "c"]);
      assert.deepEqual(
        moves,
        ["b", "c"].map((dependent) =>
          type === "clear-input" ? { type, dependent, input: "a" } : { type, dependent, dependency: "a" },
        ),
      );
    });
  }
  it("nothing to do without dependents", () => assert.deepEqual(dependentMoves({ drvPath: "a", status: "succeeded" }, []), []));
});

describe("isReadyToQueue", () => {
  const cases: Array<[string, DerivationStatus, string[] | undefined, boolean, boolean]> = [
    ["waiting, nothing pending", "waiting", undefined, false, true],
    ["waiting, an empty set of parts", "waiting", [], false, true],
    ["waiting for an input", "waiting", undefined, true, false],
    ["waiting for a part", "waiting", ["#part/1"], false, false],
    ["waiting for a part and an input", "waiting", ["#part/1"], true, false],
    ["already queued", "queued", undefined, false, false],
    ["cancelled", "cancelled", undefined, false, false],
  ];
  for (const [name, status, parts, inputs, expected] of cases) {
    it(`${name}: ${expected}`, () =>
      assert.equal(isReadyToQueue({ status, ...(parts ? { pendingParts: new Set(parts) } : {}) }, inputs), expected));
  }
});

describe("mayBeReady: whether to look for pending inputs at all", () => {
  const cases: Array<[string, DerivationStatus, string[] | undefined, boolean]> = [
    ["waiting with every part in", "waiting", undefined, true],
    ["waiting for a part", "waiting", ["#part/0"], false],
    ["building", "building", undefined, false],
  ];
  for (const [name, status, parts, expected] of cases) {
    it(`${name}: ${expected}`, () => assert.equal(mayBeReady({ status, ...(parts ? { pendingParts: new Set(parts) } : {}) }), expected));
  }
});

describe("advanceWaiting: what a waiting derivation's inputs say", () => {
  const statuses: Record<string, DerivationStatus> = { ok: "succeeded", hit: "cached", busy: "building", bad: "failed" };
  const of = (drv: string) => statuses[drv];
  const cases: Array<[string, string[], ReturnType<typeof advanceWaiting>]> = [
    ["no inputs: nothing to clear", [], { type: "clear", inputs: [] }],
    ["clears the inputs with outputs", ["ok", "busy", "hit", "unknown"], { type: "clear", inputs: ["ok", "hit"] }],
    ["a failed input fails it", ["ok", "bad", "busy"], { type: "fail", dependency: "bad" }],
  ];
  for (const [name, inputs, expected] of cases) it(name, () => assert.deepEqual(advanceWaiting(inputs, of), expected));
});

describe("inputStatusFor: an input as a job's registration sees it", () => {
  const rebuilding = { jobId: "j2", rebuildFailures: true };
  const keeping = { jobId: "j2", rebuildFailures: false };
  const cases: Array<[string, Parameters<typeof inputStatusFor>[0], Parameters<typeof inputStatusFor>[1], DerivationStatus | undefined]> = [
    ["a failure from before, in a job that rebuilds failures: pending (the job restarts it)", { status: "failed", registeredBy: "j1" }, rebuilding, "waiting"],
    ["a dependency failure from before, likewise", { status: "dependency-failed", registeredBy: "j1" }, rebuilding, "waiting"],
    ["a failure of the job's own restart: final", { status: "failed", registeredBy: "j2" }, rebuilding, "failed"],
    ["a failure, in a job that keeps failures: final", { status: "failed", registeredBy: "j1" }, keeping, "failed"],
    ["a success is a success", { status: "succeeded", registeredBy: "j1" }, rebuilding, "succeeded"],
    ["a cancellation is as it is (pending anyway)", { status: "cancelled", registeredBy: "j1" }, rebuilding, "cancelled"],
    ["an input not registered yet", undefined, rebuilding, undefined],
  ];
  for (const [name, input, registration, expected] of cases) it(name, () => assert.equal(inputStatusFor(input, registration), expected));
});

describe("staleDependencyFailure: a dependency failure whose dependency was started over", () => {
  const failedOn = { status: "dependency-failed" as const, failure: { dependency: "d" } };
  const cases: Array<[string, Parameters<typeof staleDependencyFailure>[0], DerivationStatus | undefined, boolean]> = [
    ["the dependency waits again (restarted): stale", failedOn, "waiting", true],
    ["the dependency is building again: stale", failedOn, "building", true],
    ["the dependency was built: stale", failedOn, "succeeded", true],
    ["the dependency failed still: kept", failedOn, "failed", false],
    ["the dependency failed on its own input: kept", failedOn, "dependency-failed", false],
    ["the dependency not found: kept", failedOn, undefined, false],
    ["a failure of its own build is not a dependency failure", { status: "failed", failure: { dependency: "d" } }, "succeeded", false],
    ["no dependency on record: kept", { status: "dependency-failed", failure: {} }, "succeeded", false],
  ];
  for (const [name, drv, dependency, expected] of cases) it(name, () => assert.equal(staleDependencyFailure(drv, dependency), expected));
});

describe("registrationStep: a derivation found again", () => {
  const cases: Array<[string, Parameters<typeof registrationStep>[0], RegistrationStep]> = [
    ["a new item stays as it is", { created: true, status: "waiting", rebuildFailures: false, part: false }, "keep"],
    ["a new part of a new item stays too", { created: true, status: "waiting", rebuildFailures: false, part: true }, "keep"],
    ["another part of a waiting item merges", { created: false, status: "waiting", rebuildFailures: false, part: true }, "merge-part"],
    ["a whole event for a waiting item keeps it", { created: false, status: "waiting", rebuildFailures: false, part: false }, "keep"],
    ["a cancellation restarts", { created: false, status: "cancelled", rebuildFailures: false, part: false }, "restart"],
    ["a failure stays failed", { created: false, status: "failed", rebuildFailures: false, part: false }, "keep"],
    ["a failure restarts on a rebuild", { created: false, status: "failed", rebuildFailures: true, part: false }, "restart"],
    ["a dependency failure restarts on a rebuild", { created: false, status: "dependency-failed", rebuildFailures: true, part: true }, "restart"],
    ["a success stays, even on a rebuild", { created: false, status: "succeeded", rebuildFailures: true, part: false }, "keep"],
    ["a build in progress stays", { created: false, status: "building", rebuildFailures: true, part: true }, "keep"],
    ["an item gone meanwhile is left alone", { created: false, status: undefined, rebuildFailures: false, part: true }, "keep"],
  ];
  for (const [name, input, expected] of cases) it(name, () => assert.equal(registrationStep(input), expected));
});

describe("partRegistration: a part of a derivation another registration started", () => {
  const cases: Array<[string, Parameters<typeof partRegistration>[0], ReturnType<typeof partRegistration>]> = [
    ["its own job registered it: extend it", { registeredBy: "j1", jobId: "j1", partsMissing: true, registrarEvaluating: true }, "merge"],
    ["its own job, evaluating again (a retried evaluation): extend it", { registeredBy: "j1", jobId: "j1", partsMissing: true, registrarEvaluating: false }, "merge"],
    ["another job's, every part in: nothing to add", { registeredBy: "j1", jobId: "j2", partsMissing: false, registrarEvaluating: true }, "ignore"],
    ["another job's, parts missing, that job still evaluating: not yet", { registeredBy: "j1", jobId: "j2", partsMissing: true, registrarEvaluating: true }, "later"],
    ["another job's, parts missing, its evaluation over: take it over", { registeredBy: "j1", jobId: "j2", partsMissing: true, registrarEvaluating: false }, "adopt"],
    ["another job's, every part in, its evaluation over: nothing to add", { registeredBy: "j1", jobId: "j2", partsMissing: false, registrarEvaluating: false }, "ignore"],
    ["an item from before the rule (nobody named): extended as before", { registeredBy: undefined, jobId: "j2", partsMissing: true, registrarEvaluating: false }, "merge"],
  ];
  for (const [name, input, expected] of cases) it(name, () => assert.equal(partRegistration(input), expected));
});

describe("intrinsicConflict: what two evaluations must agree on", () => {
  const stored = { system: "x86_64-linux", requiredFeatures: ["kvm", "big-parallel"], outputs: { out: "/nix/store/a-out", dev: "/nix/store/a-dev" }, status: "waiting" as const };
  const cases: Array<[string, Partial<typeof stored>, string | undefined]> = [
    ["the same fields, features and outputs in another order", { requiredFeatures: ["big-parallel", "kvm"], outputs: { dev: "/nix/store/a-dev", out: "/nix/store/a-out" } }, undefined],
    ["another system", { system: "aarch64-linux" }, "system aarch64-linux (registered: x86_64-linux)"],
    ["a feature fewer", { requiredFeatures: ["kvm"] }, "required features [kvm] (registered: [big-parallel,kvm])"],
    ["another output path", { outputs: { out: "/nix/store/evil-out", dev: "/nix/store/a-dev" } }, 'outputs [["dev","/nix/store/a-dev"],["out","/nix/store/evil-out"]] (registered: [["dev","/nix/store/a-dev"],["out","/nix/store/a-out"]])'],
  ];
  for (const [name, claimed, expected] of cases) it(name, () => assert.equal(intrinsicConflict(stored, { ...stored, ...claimed }), expected));
  it("names every difference", () => assert.match(intrinsicConflict(stored, { system: "s", requiredFeatures: [], outputs: {} })!, /^system s .*; required features .*; outputs /));
  it("compares outputs no more once a build reported them", () => {
    assert.equal(intrinsicConflict({ ...stored, status: "succeeded", outputs: { out: "/nix/store/built-out" } }, stored), undefined);
    assert.match(intrinsicConflict({ ...stored, status: "succeeded" }, { ...stored, system: "s" })!, /^system s/);
  });
});
