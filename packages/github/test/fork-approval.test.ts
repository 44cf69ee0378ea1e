import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decideApproval, mayApprove, startsWithoutApproval, type HeldJob } from "../src/fork-approval.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const held: HeldJob[] = [
  { jobId: "j1", repository: "octo/hello", commit: A, pullRequest: 3 },
  { jobId: "j2", repository: "octo/hello", commit: B, pullRequest: 3 },
  { jobId: "j3", repository: "octo/other", commit: A, pullRequest: 3 },
];

describe("fork approval", () => {
  it("takes write access: admin and write (maintain) may, triage/read and strangers may not", () => {
    assert.deepEqual((["admin", "write", "read", "none"] as const).map(mayApprove), [true, true, false, false]);
    assert.equal(startsWithoutApproval("write"), true);
    assert.equal(startsWithoutApproval("read"), false);
  });

  it("releases exactly the held jobs of the approved commit in its repository", () => {
    assert.deepEqual(decideApproval({ repository: "octo/hello", commit: A, approver: "maintainer", pullRequest: 3 }, "write", held), { type: "approve", jobIds: ["j1"] });
  });

  it("an approval of an earlier head does not release a later push", () => {
    const decision = decideApproval({ repository: "octo/hello", commit: A, approver: "maintainer" }, "admin", held.filter((j) => j.commit === B));
    assert.equal(decision.type, "refuse");
    assert.match((decision as { reason: string }).reason, /no job of octo\/hello is waiting for approval of commit a{40}/);
  });

  it("the check-run button releases only its own job", () => {
    const twice: HeldJob[] = [...held, { jobId: "j4", repository: "octo/hello", commit: A, pullRequest: 4 }];
    assert.deepEqual(decideApproval({ repository: "octo/hello", commit: A, approver: "m", jobId: "j4" }, "write", twice), { type: "approve", jobIds: ["j4"] });
  });

  it("someone with only triage or read access (who may add labels) is refused, saying why", () => {
    const decision = decideApproval({ repository: "octo/hello", commit: A, approver: "mallory" }, "read", held);
    assert.deepEqual(decision, { type: "refuse", reason: "mallory has read access to octo/hello; approving a fork's commit takes write access" });
  });
});
