import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BuildTask, EvaluateTask } from "@nimbus/protocol";
import { WorkNotes } from "../src/flow/new-work.ts";
import { OwedAck } from "../src/flow/result-acks.ts";

const build = (taskId: string): BuildTask => ({ type: "build", taskId, drvPath: `/nix/store/${"a".repeat(32)}-${taskId}.drv`, system: "x86_64-linux", requiredFeatures: [] });
const evaluate: EvaluateTask = { type: "evaluate", taskId: "e-1", jobId: "j1", repository: "o/r", cloneUrl: "https://example.invalid/o/r.git", commit: "0".repeat(40) };

// A result is acknowledged once: by the first build sent to its agent, or alone — never both, never twice.
describe("OwedAck", () => {
  it("rides on the first build only, and then is not sent alone", () => {
    const ack = new OwedAck("b-first");
    assert.deepEqual(ack.carry(build("b-next")), { ...build("b-next"), acks: ["b-first"] });
    assert.deepEqual(ack.carry(build("b-later")), build("b-later"), "a later build carries nothing");
    assert.equal(ack.alone(), undefined);
  });

  it("an evaluation does not carry it: it goes alone, once", () => {
    const ack = new OwedAck("b-first");
    assert.deepEqual(ack.carry(evaluate), evaluate);
    assert.deepEqual(ack.alone(), { type: "result-ack", taskId: "b-first" });
    assert.equal(ack.alone(), undefined);
    assert.deepEqual(ack.carry(build("b-next")), build("b-next"), "sent alone already: not carried as well");
  });

  it("WorkNotes gives the reporter's ack alone only if no build took it, and nothing for a frame that owes none", () => {
    const owing = new WorkNotes();
    const ack = new OwedAck("b-first");
    owing.offerFirstTo(Promise.resolve(undefined), undefined, ack);
    assert.deepEqual(owing.ackNotCarried(), { type: "result-ack", taskId: "b-first" });
    assert.equal(owing.ackNotCarried(), undefined);

    const carried = new WorkNotes();
    const other = new OwedAck("b-other");
    carried.offerFirstTo(Promise.resolve(undefined), undefined, other);
    carried.handOverReporter()?.ack?.carry(build("b-next"));
    assert.equal(carried.ackNotCarried(), undefined);

    const none = new WorkNotes();
    none.offerFirstTo(Promise.resolve(undefined));
    assert.equal(none.ackNotCarried(), undefined);
    assert.equal(new WorkNotes().ackNotCarried(), undefined);
  });
});
