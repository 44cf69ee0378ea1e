import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jobOutcome, mustFailProblem, rowVerdict, type VerdictRow } from "../src/index.ts";

const outcome = (rows: VerdictRow[], attributeErrors = 0) => {
  const { counts, failures, unmetMustFail } = rowVerdict(rows);
  return jobOutcome({ evaluation: "succeeded", attributeErrors, counts, verdict: { failures, unmetMustFail } });
};

describe("attribute types in a job's verdict", () => {
  it("regular: a failure or dependency failure fails the job", () => {
    assert.equal(outcome([{ status: "succeeded" }, { status: "failed" }]), "failed");
    assert.equal(outcome([{ status: "dependency-failed" }]), "failed");
    assert.equal(outcome([{ status: "succeeded" }, { status: "cached" }]), "succeeded");
  });

  it("may-fail: its failure and its inputs' do not fail the job", () => {
    assert.equal(outcome([{ status: "succeeded" }, { status: "failed", excused: "may-fail" }, { status: "dependency-failed", excused: "may-fail" }]), "succeeded");
  });

  it("must-fail: a failure is the success, a build or an input's failure is the failure", () => {
    assert.equal(outcome([{ status: "failed", excused: "must-fail" }, { status: "succeeded" }]), "succeeded");
    assert.equal(outcome([{ status: "succeeded", excused: "must-fail" }]), "failed");
    assert.equal(outcome([{ status: "cached", excused: "must-fail" }]), "failed", "already built elsewhere: it did not fail");
    assert.equal(outcome([{ status: "dependency-failed", excused: "must-fail" }, { status: "failed" }]), "failed");
  });

  it("still builds while anything is unsettled, a derivation another job's cancel took among them", () => {
    assert.equal(outcome([{ status: "failed", excused: "must-fail" }, { status: "queued", excused: "may-fail" }]), "building");
    // A running job's cancelled derivation is started again for it (docs/reliability.md, "Cancelling a job").
    assert.equal(outcome([{ status: "failed", excused: "may-fail" }, { status: "cancelled" }]), "building");
  });

  it("an attribute error fails the job whatever the derivations did", () => {
    assert.equal(outcome([{ status: "failed", excused: "must-fail" }], 1), "failed");
  });

  it("counts each status once per row", () => {
    assert.deepEqual(rowVerdict([{ status: "failed", excused: "may-fail" }, { status: "failed" }, { status: "succeeded", excused: "must-fail" }]), {
      counts: { failed: 2, succeeded: 1 },
      failures: 1,
      unmetMustFail: 1,
    });
  });

  it("says why a must-fail derivation fails its job", () => {
    assert.match(mustFailProblem("succeeded") ?? "", /must fail .* but it built/);
    assert.match(mustFailProblem("dependency-failed") ?? "", /input failed first/);
    assert.equal(mustFailProblem("failed"), undefined);
  });
});
