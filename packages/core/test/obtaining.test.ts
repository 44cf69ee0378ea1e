import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CacheInfo } from "@nimbus/protocol";
import {
  buildNeeds,
  canObtain,
  type Candidate,
  minimalNeeds,
  placeBuild,
  takersOf,
  reachOf,
  reaches,
  unmetNeeds,
  waitingReason,
} from "../src/obtaining.ts";

const STORE_A = "builder-a/aaaaaaaaaaaa";
const STORE_B = "builder-b/bbbbbbbbbbbb";
const cache = (name: string, pull = true): CacheInfo => ({ name, kind: "NixCache", publicKeys: [`${name}-1:k`], push: true, pull });

/** An agent on x86_64-linux with these features, store and caches. */
const agent = (
  id: string,
  over: { storeId?: string; caches?: CacheInfo[]; substituters?: string[]; features?: string[]; mandatory?: string[]; draining?: boolean } = {},
): Candidate => ({
  sessionId: id,
  ...(over.draining ? { draining: true } : {}),
  agent: {
    systems: ["x86_64-linux"],
    systemFeatures: over.features ?? [],
    mandatoryFeatures: over.mandatory ?? [],
    substituters: over.substituters ?? [],
    caches: over.caches ?? [],
    ...(over.storeId === undefined ? {} : { storeId: over.storeId }),
  },
});

describe("reaches: one source", () => {
  const a = reachOf(agent("a", { storeId: STORE_A, caches: [cache("shared"), cache("write-only", false)], substituters: ["https://cache.nixos.org/"] }).agent);
  const cases: Array<[string, string, boolean]> = [
    ["a cache it reads", "cache:shared", true],
    ["a cache it does not know", "cache:other", false],
    ["a cache it only pushes to", "cache:write-only", false],
    ["its own store", `store:${STORE_A}`, true],
    ["another machine's store", `store:${STORE_B}`, false],
    ["a substituter its Nix uses, trailing slash or not", "substituter:https://cache.nixos.org", true],
    ["a substituter it does not use", "substituter:https://example.com/cache", false],
    ["nonsense", "ftp:somewhere", false],
  ];
  for (const [name, source, expected] of cases) it(`${name}: ${expected}`, () => assert.equal(reaches(a, source), expected));

  it("an agent that reports no store reaches no store", () => {
    assert.equal(reaches(reachOf(agent("x").agent), `store:${STORE_A}`), false);
  });
});

describe("canObtain: every need met by one of its places", () => {
  const reach = reachOf(agent("b", { storeId: STORE_B, caches: [cache("shared")] }).agent);
  const cases: Array<[string, string[][], boolean, number]> = [
    ["nothing needed", [], true, 0],
    ["the .drv in a cache it reads", [["cache:shared", `store:${STORE_A}`]], true, 0],
    ["an input it built itself (push failed)", [[`store:${STORE_B}`]], true, 0],
    ["an input only on another machine", [[`store:${STORE_A}`]], false, 1],
    ["one need met, another not", [["cache:shared"], ["cache:cachix", `store:${STORE_A}`]], false, 1],
    ["every need met by a different place", [["cache:shared"], [`store:${STORE_B}`, "cache:cachix"]], true, 0],
  ];
  for (const [name, needs, expected, unmet] of cases) {
    it(`${name}: ${expected}`, () => {
      assert.equal(canObtain(reach, needs), expected);
      assert.equal(unmetNeeds(reach, needs).length, unmet);
    });
  }
});

describe("buildNeeds: what the evaluation reported plus where each built input is", () => {
  const cases: Array<[string, string[][] | undefined, Array<{ sources?: string[] }>, string[][]]> = [
    ["nothing known: no constraint", undefined, [{}], []],
    ["the reported needs, sorted", [["store:x/aaaaaaaaaaaa", "cache:c"]], [], [["cache:c", "store:x/aaaaaaaaaaaa"]]],
    ["an input built with its outputs pushed", [], [{ sources: ["store:b/bbbbbbbbbbbb", "cache:c"] }], [["cache:c", "store:b/bbbbbbbbbbbb"]]],
    ["duplicates become one", [["cache:c"]], [{ sources: ["cache:c"] }, { sources: ["cache:c"] }], [["cache:c"]]],
    // Reaching cache:c already reaches one place of the bigger need.
    ["a need implied by a smaller one is dropped", [["cache:c", "store:a/aaaaaaaaaaaa"]], [{ sources: ["cache:c"] }], [["cache:c"]]],
    ["an input with no recorded sources adds nothing", [["cache:c"]], [{ sources: [] }, {}], [["cache:c"]]],
  ];
  for (const [name, reported, inputs, expected] of cases) it(name, () => assert.deepEqual(buildNeeds(reported, inputs), expected));

  it("takes a Set as DynamoDB reads it", () => {
    assert.deepEqual(buildNeeds([], [{ sources: new Set(["cache:c"]) as unknown as string[] }]), [["cache:c"]]);
  });

  it("minimalNeeds keeps every need that no smaller one implies", () => {
    assert.deepEqual(minimalNeeds([["a", "b"], ["b", "c"], ["a", "b", "c"], ["b"]]), [["b"]]);
    assert.deepEqual(minimalNeeds([["a", "b"], ["c"], ["a"]]), [["a"], ["c"]]);
  });
});

describe("placeBuild: here, elsewhere or nowhere", () => {
  const a = agent("A", { storeId: STORE_A, caches: [cache("shared")], features: ["fa"] });
  const b = agent("B", { storeId: STORE_B, caches: [cache("shared")], features: ["fb"] });
  const bNoCache = agent("B", { storeId: STORE_B, features: ["fb"] });
  const plain = agent("P", { storeId: "plain/cccccccccccc" });
  const build = (features: string[], needs: string[][]) => ({ system: "x86_64-linux", requiredFeatures: features, needs });
  const cases: Array<[string, Candidate, ReturnType<typeof build>, Candidate[], "here" | "elsewhere" | "nowhere"]> = [
    ["b on B: a's output and the .drv in the shared cache", b, build(["fb"], [["cache:shared", `store:${STORE_A}`]]), [a, b], "here"],
    ["b on B without the cache: only A has them, and A cannot build b", bNoCache, build(["fb"], [[`store:${STORE_A}`]]), [a, bNoCache], "nowhere"],
    ["a push failed: a plain agent receives c, only A has a", plain, build([], [[`store:${STORE_A}`]]), [a, plain], "elsewhere"],
    ["… and A takes it", a, build([], [[`store:${STORE_A}`]]), [a, plain], "here"],
    ["a draining agent that could is no place for it", plain, build([], [[`store:${STORE_A}`]]), [agent("A", { storeId: STORE_A, draining: true }), plain], "nowhere"],
    ["nothing needed: anyone who may build it", plain, build([], []), [plain], "here"],
  ];
  for (const [name, holder, drv, sessions, expected] of cases) it(`${name}: ${expected}`, () => assert.equal(placeBuild(holder, drv, sessions), expected));

  it("takersOf names the other sessions that can take what the holder leaves, draining ones and the holder left out", () => {
    const onlyA = build([], [[`store:${STORE_A}`]]);
    const a2 = agent("A2", { storeId: STORE_A });
    const draining = agent("A3", { storeId: STORE_A, draining: true });
    assert.deepEqual(takersOf(plain, onlyA, [a, plain, a2, draining, bNoCache]), ["A", "A2"]);
    assert.deepEqual(takersOf(a, onlyA, [a, plain]), [], "the holder itself is not another taker");
    assert.deepEqual(takersOf(bNoCache, build(["fb"], [[`store:${STORE_A}`]]), [a, bNoCache]), []);
  });
});

describe("waitingReason: what the job view says", () => {
  const a = agent("A", { storeId: STORE_A, caches: [cache("shared")], features: ["fa"] }).agent;
  const b = agent("B", { storeId: STORE_B, features: ["fb"] }).agent;
  const needs = (n: string[][]) => ({ system: "x86_64-linux", requiredFeatures: ["fb"], needs: n });
  const cases: Array<[string, ReturnType<typeof needs>, Candidate["agent"][], string | undefined]> = [
    ["inputs only in A's store", needs([[`store:${STORE_A}`]]), [a, b], "inputs only on agent builder-a; no shared cache"],
    ["in a cache no builder reads", needs([["cache:shared", `store:${STORE_A}`]]), [a, b], 'needs paths held only by agent builder-a or cache "shared", which no agent that can build it reads'],
    ["someone can take it", needs([[`store:${STORE_B}`]]), [a, b], undefined],
    ["nobody can build it at all (waiting for an agent instead)", { ...needs([]), requiredFeatures: ["kvm"] }, [a, b], undefined],
  ];
  for (const [name, build, agents, expected] of cases) it(name, () => assert.equal(waitingReason(build, agents), expected));

  it("each need met by some builder, all of them by none", () => {
    const c1 = agent("C1", { caches: [cache("one")], features: ["fb"] }).agent;
    const c2 = agent("C2", { caches: [cache("two")], features: ["fb"] }).agent;
    assert.match(waitingReason(needs([["cache:one"], ["cache:two"]]), [c1, c2]) ?? "", /^no single agent that can build it reaches every input/);
  });
});
