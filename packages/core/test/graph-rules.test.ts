import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DerivationStatus } from "@nimbus/protocol";
import { buildQueueName, canMove, cancelStep, jobCheck, jobOutcome, movesInto, parseQueueKey, queueKeyOf, readinessOf, type JobCheck } from "../src/index.ts";

describe("status transitions", () => {
  const allowed: Array<[DerivationStatus, DerivationStatus]> = [
    ["waiting", "queued"],
    ["waiting", "dependency-failed"],
    ["queued", "building"],
    ["waiting", "building"],
    ["building", "succeeded"],
    ["building", "failed"],
    ["building", "queued"],
    ["failed", "waiting"],
    ["dependency-failed", "waiting"],
    ["cancelled", "waiting"],
  ];
  const forbidden: Array<[DerivationStatus, DerivationStatus]> = [
    ["succeeded", "building"],
    ["succeeded", "failed"],
    ["cached", "queued"],
    ["failed", "succeeded"],
    ["queued", "succeeded"],
    ["waiting", "succeeded"],
    ["dependency-failed", "queued"],
  ];
  for (const [from, to] of allowed) it(`${from} → ${to} is allowed`, () => assert.equal(canMove(from, to), true));
  for (const [from, to] of forbidden) it(`${from} → ${to} is not`, () => assert.equal(canMove(from, to), false));
  it("lists where a status may be reached from", () => {
    assert.deepEqual(movesInto("building"), ["waiting", "queued"]);
    assert.deepEqual(movesInto("waiting").sort(), ["cancelled", "dependency-failed", "failed"]);
  });
});

describe("readiness", () => {
  const statuses: Record<string, DerivationStatus> = { a: "succeeded", b: "cached", c: "building", f: "failed", d: "dependency-failed" };
  const of = (drv: string) => statuses[drv];
  it("is ready when every input has outputs", () => assert.deepEqual(readinessOf(["a", "b"], of), { kind: "ready" }));
  it("is ready with no inputs", () => assert.deepEqual(readinessOf([], of), { kind: "ready" }));
  it("waits for unfinished and unknown inputs", () =>
    assert.deepEqual(readinessOf(["a", "c", "x"], of), { kind: "waiting", pending: ["c", "x"] }));
  it("fails when an input failed, naming it", () =>
    assert.deepEqual(readinessOf(["a", "c", "f"], of), { kind: "dependency-failed", dependency: "f" }));
  it("fails when an input is dependency-failed", () =>
    assert.deepEqual(readinessOf(["d"], of), { kind: "dependency-failed", dependency: "d" }));
});

describe("job outcome", () => {
  it("is evaluating until the evaluation ends", () =>
    assert.equal(jobOutcome({ evaluation: "running", attributeErrors: 0, counts: {} }), "evaluating"));
  it("fails when the evaluation failed", () =>
    assert.equal(jobOutcome({ evaluation: "failed", attributeErrors: 0, counts: { building: 2 } }), "failed"));
  it("builds while anything is unsettled, even with failures", () =>
    assert.equal(jobOutcome({ evaluation: "succeeded", attributeErrors: 1, counts: { failed: 1, queued: 1 } }), "building"));
  it("fails on a failed derivation, a dependency failure or an attribute error", () => {
    assert.equal(jobOutcome({ evaluation: "succeeded", attributeErrors: 0, counts: { failed: 1, succeeded: 3 } }), "failed");
    assert.equal(jobOutcome({ evaluation: "succeeded", attributeErrors: 0, counts: { "dependency-failed": 1 } }), "failed");
    assert.equal(jobOutcome({ evaluation: "succeeded", attributeErrors: 1, counts: { succeeded: 1 } }), "failed");
  });
  it("waits while a derivation it needs was cancelled by another job (it is started again)", () =>
    assert.equal(jobOutcome({ evaluation: "succeeded", attributeErrors: 0, counts: { cancelled: 1, succeeded: 2 } }), "building"));
  it("succeeds when everything built or was cached, including an empty job", () => {
    assert.equal(jobOutcome({ evaluation: "succeeded", attributeErrors: 0, counts: { succeeded: 2, cached: 5 } }), "succeeded");
    assert.equal(jobOutcome({ evaluation: "succeeded", attributeErrors: 0, counts: {} }), "succeeded");
  });
});

describe("queue keys", () => {
  it("sort and de-duplicate features", () => {
    assert.equal(queueKeyOf("x86_64-linux", ["kvm", "big-parallel", "kvm"]), "x86_64-linux|big-parallel,kvm");
    assert.deepEqual(parseQueueKey("x86_64-linux|big-parallel,kvm"), { system: "x86_64-linux", features: ["big-parallel", "kvm"] });
    assert.deepEqual(parseQueueKey(queueKeyOf("builtin", [])), { system: "builtin", features: [] });
  });
  it("name a valid, deterministic SQS FIFO queue", () => {
    const name = buildQueueName("nimbus-prod-build-", queueKeyOf("aarch64-darwin", ["gpu"]));
    assert.equal(name, buildQueueName("nimbus-prod-build-", "aarch64-darwin|gpu"));
    assert.match(name, /^[A-Za-z0-9_-]{1,75}\.fifo$/);
    assert.notEqual(name, buildQueueName("nimbus-prod-build-", "aarch64-darwin|"));
  });
});

describe("job check: how much reading finishing a job takes", () => {
  const cases: Array<[string, Parameters<typeof jobCheck>[0], JobCheck]> = [
    ["a job that is gone", undefined, "leave"],
    ["a finished job", { status: "succeeded", evaluation: "succeeded" }, "leave"],
    ["a cancelled job", { status: "cancelled", evaluation: "running" }, "leave"],
    ["still evaluating", { status: "evaluating", evaluation: "running" }, "leave"],
    ["evaluation queued", { status: "evaluating", evaluation: "queued" }, "leave"],
    ["evaluation failed: count at once", { status: "evaluating", evaluation: "failed" }, "count"],
    ["building: look for unsettled derivations first", { status: "building", evaluation: "succeeded" }, "look-for-unsettled"],
  ];
  for (const [name, job, expected] of cases) it(name, () => assert.equal(jobCheck(job), expected));
});

describe("cancelStep: what cancelling a job does to one of its derivations", () => {
  const cases: Array<[DerivationStatus | undefined, boolean, ReturnType<typeof cancelStep>]> = [
    ["waiting", false, "cancel"],
    ["queued", false, "cancel"],
    ["building", false, "stop-build"],
    ["queued", true, "leave"],
    ["building", true, "leave"],
    ["succeeded", false, "leave"],
    ["failed", false, "leave"],
    ["cancelled", false, "leave"],
    [undefined, false, "leave"],
  ];
  for (const [status, elsewhere, expected] of cases) {
    it(`${status ?? "unknown"}${elsewhere ? ", needed by another running job" : ""}: ${expected}`, () => assert.equal(cancelStep(status, elsewhere), expected));
  }
});
