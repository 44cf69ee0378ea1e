import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BuildTask, MAX_FOLDED_ACKS, ServiceMessage, type EvaluateTask } from "@nimbus/protocol";
import { foldAcks } from "../src/result-acks.ts";

const build: BuildTask = {
  type: "build",
  taskId: "b-5f0c1e2d3a4b5c6d-0",
  drvPath: "/nix/store/7rjj86a15146cq4zcahi6nmbzzh3mj4n-hello-2.12.1.drv",
  system: "x86_64-linux",
  requiredFeatures: [],
};

describe("foldAcks: a result's acknowledgement rides on the build sent to its agent", () => {
  it("a build carries the owed acks, and stays a valid build message", () => {
    const { message, folded } = foldAcks(build, ["b-1111111111111111-0"]);
    assert.deepEqual(folded, ["b-1111111111111111-0"]);
    assert.deepEqual(message, { ...build, acks: ["b-1111111111111111-0"] });
    assert.equal(ServiceMessage.safeParse(message).success, true);
  });

  it("nothing owed: the build goes unchanged, with no empty acks (the schema wants at least one)", () => {
    const { message, folded } = foldAcks(build, []);
    assert.deepEqual(folded, []);
    assert.equal(message, build);
    assert.equal("acks" in message, false);
  });

  it("evaluate and effect tasks carry none: the ack goes alone", () => {
    const evaluate: EvaluateTask = {
      type: "evaluate",
      taskId: "e-1",
      jobId: "j1",
      repository: "o/r",
      cloneUrl: "https://example.invalid/o/r.git",
      commit: "0".repeat(40),
    };
    const { message, folded } = foldAcks(evaluate, ["b-1111111111111111-0"]);
    assert.deepEqual(folded, []);
    assert.equal(message, evaluate);
  });

  it("adds to the acks a build carries already, each id once", () => {
    const { message, folded } = foldAcks({ ...build, acks: ["a"] }, ["b", "a", "b"]);
    assert.deepEqual(folded, ["b", "a"]);
    assert.deepEqual(message.type === "build" && message.acks, ["a", "b"]);
  });

  it("a build that cannot carry them all carries none of them", () => {
    const full = Array.from({ length: MAX_FOLDED_ACKS }, (_, i) => `t-${i}`);
    const { message, folded } = foldAcks({ ...build, acks: full }, ["one-more"]);
    assert.deepEqual(folded, []);
    assert.deepEqual(message.type === "build" && message.acks, full);
  });
});
