import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { handOverSlots, LOOK_AGAIN_AFTER_MS, mayHandOver, mayHoldWork, type HandOverSession, type HandOverState } from "../src/hand-over.ts";
import type { BuildNeeds } from "../src/obtaining.ts";

const STORE = "reporter/aaaaaaaaaaaa";

/** The reporting agent's session after its result's release: x86_64-linux with `kvm`, its own store, one cache. */
const reporter = (over: Partial<HandOverSession> & { mandatory?: string[] } = {}): HandOverSession => ({
  sessionId: "s-reporter",
  connectionId: "c-reporter",
  runningTasks: 3,
  ...over,
  agent: {
    systems: ["x86_64-linux"],
    systemFeatures: ["kvm"],
    mandatoryFeatures: over.mandatory ?? [],
    concurrentTasks: 4,
    substituters: [],
    caches: [{ name: "team", kind: "NixCache", publicKeys: ["team-1:k"], push: true, pull: true }],
    storeId: STORE,
    ...over.agent,
  },
});
const ready: HandOverState = { handedOver: 0, evaluationsMayWait: false };
/** A dependent of what the reporter just built: its input's outputs are in the reporter's store. */
const build = (over: Partial<BuildNeeds> = {}): BuildNeeds => ({ system: "x86_64-linux", requiredFeatures: [], needs: [[`store:${STORE}`]], ...over });

describe("handOverSlots: how many builds a result may hand its agent", () => {
  it("one, the slot its result freed, however many slots are free", () => {
    assert.equal(handOverSlots(reporter(), ready), 1);
    assert.equal(handOverSlots(reporter({ runningTasks: 0 }), ready), 1, "a job gains no slots by hand-over: the rest go through the queues");
  });
  it("none once it handed one", () => assert.equal(handOverSlots(reporter({ runningTasks: 0 }), { ...ready, handedOver: 1 }), 0));
  it("none without a free slot (another dispatch filled it after the release)", () => assert.equal(handOverSlots(reporter({ runningTasks: 4 }), ready), 0));
  it("none while draining or away", () => {
    assert.equal(handOverSlots(reporter({ draining: true }), ready), 0);
    const { connectionId: _gone, ...away } = reporter();
    assert.equal(handOverSlots(away, ready), 0);
  });
  it("none while evaluations may be waiting: a dispatch serves them first", () => assert.equal(handOverSlots(reporter(), { ...ready, evaluationsMayWait: true }), 0));
});

describe("mayHandOver: whether the reporting agent takes this dependent now", () => {
  it("yes when it can build it and reaches every input", () => {
    assert.equal(mayHandOver(reporter(), build(), ready), true);
    assert.equal(mayHandOver(reporter(), build({ requiredFeatures: ["kvm"], needs: [[`store:${STORE}`], ["cache:team", "store:other/bbbbbbbbbbbb"]] }), ready), true);
  });
  it("no for another system, a feature it lacks, or one its mandatory features leave out (Nix's rule)", () => {
    assert.equal(mayHandOver(reporter(), build({ system: "aarch64-linux" }), ready), false);
    assert.equal(mayHandOver(reporter(), build({ requiredFeatures: ["big-parallel"] }), ready), false);
    assert.equal(mayHandOver(reporter({ mandatory: ["kvm"] }), build(), ready), false);
  });
  it("no when an input is out of its reach (core obtaining.ts)", () =>
    assert.equal(mayHandOver(reporter(), build({ needs: [[`store:${STORE}`], ["store:other/bbbbbbbbbbbb"]] }), ready), false));
  it("no without a slot left for it, or while evaluations may wait", () => {
    assert.equal(mayHandOver(reporter(), build(), { ...ready, handedOver: 1 }), false);
    assert.equal(mayHandOver(reporter({ runningTasks: 4 }), build(), ready), false);
    assert.equal(mayHandOver(reporter({ draining: true }), build(), ready), false);
    assert.equal(mayHandOver(reporter(), build(), { ...ready, evaluationsMayWait: true }), false);
  });
});

describe("mayHoldWork: a handler's belief about the evaluation queue", () => {
  const now = 1_000_000;
  it("may hold work when never looked at, or when the last look found some", () => {
    assert.equal(mayHoldWork(undefined, now), true);
    assert.equal(mayHoldWork({ at: now - 10, found: true }, now), true);
  });
  it("is believed empty after a look that found none, until that look is LOOK_AGAIN_AFTER_MS old", () => {
    assert.equal(mayHoldWork({ at: now - 10, found: false }, now), false);
    assert.equal(mayHoldWork({ at: now - LOOK_AGAIN_AFTER_MS, found: false }, now), false);
    assert.equal(mayHoldWork({ at: now - LOOK_AGAIN_AFTER_MS - 1, found: false }, now), true);
  });
});
