import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setEarlyWake, WorkNotes } from "../src/flow/new-work.ts";

// An early wake fills one idle agent per task it knows of (flow/dispatch.ts): it must carry the
// number of builds queued since the last one, and the closing wake only the rest.
describe("WorkNotes.wakeSoon", () => {
  it("hands the early wake every build queued so far, and leaves the closing wake only what came later", async () => {
    const woken: Array<{ queues: string[]; tasks: number }> = [];
    setEarlyWake(async (batch) => {
      woken.push({ queues: [...batch.queueKeys], tasks: batch.tasks });
    });
    const work = new WorkNotes();
    for (let i = 0; i < 5; i++) work.addBuildQueue("x86_64-linux");
    work.addBuildQueue("aarch64-linux");
    work.wakeSoon();
    await work.wakesDone();
    assert.deepEqual(woken, [{ queues: ["x86_64-linux", "aarch64-linux"], tasks: 6 }]);
    assert.deepEqual([work.queueKeys.size, work.tasks], [0, 0], "nothing left for the closing wake");

    work.addEvaluation();
    work.addBuildQueue("x86_64-linux");
    assert.deepEqual([[...work.queueKeys], work.tasks, work.evaluations], [["x86_64-linux"], 2, true], "later work waits for the closing wake");
  });
});

// A batch's ready derivations are woken for before its other items are written (flow/register-batch.ts):
// `wakeFirst` returns only once the wake it started is over, and one wake covers every queue noted.
describe("WorkNotes.wakeFirst", () => {
  it("returns once the wake it started has run, after one wake for every queue noted so far", async () => {
    const woken: string[][] = [];
    let finish!: () => void;
    setEarlyWake(async (batch) => {
      woken.push([...batch.queueKeys]);
      await new Promise<void>((resolve) => (finish = resolve));
    });
    const work = new WorkNotes();
    work.addBuildQueue("x86_64-linux");
    work.addBuildQueue("aarch64-linux");
    let returned = false;
    const first = work.wakeFirst().then(() => (returned = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(woken, [["x86_64-linux", "aarch64-linux"]]);
    assert.equal(returned, false, "still waking");
    finish();
    await first;
    assert.equal(returned, true);
  });
});

