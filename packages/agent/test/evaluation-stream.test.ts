/**
 * The evaluation's events sent piece by piece as the `.drv` closures are pushed
 * (evaluation-stream.ts, push-chunks.ts): the pieces, the order of pushes and sends, what each
 * event may promise, and a cache that fails part-way. The caches here are in-memory recorders
 * of what they hold (no Nix: the graph is made up); the flows with real Nix and a real cache are
 * in test/separate-stores.test.ts and caches.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BinaryCacheClient, LocalPathInfo, PathInfoSource } from "@nimbus/cache";
import type { EvaluationEvent } from "@nimbus/protocol";
import type { CachePlan } from "../src/evaluation-caches.ts";
import { streamEvents } from "../src/evaluation-stream.ts";
import type { DerivationInfo } from "../src/nix-closure.ts";
import { EvaluationFailure, type WalkResult } from "../src/nix-walk.ts";
import { growingChunks } from "../src/push-chunks.ts";
import { PhaseTimings } from "../src/task-timings.ts";
import type { TaskCaches } from "../src/tasks/task-kind.ts";

describe("growingChunks", () => {
  const sizes = (n: number, first?: number, growth?: number) => growingChunks([...Array(n).keys()], first, growth).map((c) => c.length);

  it("starts with 8, then each piece 4 times the one before; a smaller remainder joins the last piece", () => {
    assert.deepEqual(sizes(1000), [8, 32, 128, 832]);
    assert.deepEqual(sizes(100), [8, 32, 60]);
    assert.deepEqual(sizes(16), [8, 8]);
    assert.deepEqual(sizes(15), [15], "7 left after 8 would be a tail: one piece");
    assert.deepEqual(sizes(10_000), [8, 32, 128, 512, 2048, 7272]);
    assert.deepEqual(sizes(1), [1]);
    assert.deepEqual(sizes(0), []);
  });

  it("keeps every item once, in order; few pieces however large", () => {
    const items = [...Array(100_000).keys()];
    const chunks = growingChunks(items);
    assert.deepEqual(chunks.flat(), items);
    assert.ok(chunks.length <= 8, `${chunks.length} pieces`);
    assert.deepEqual(sizes(10, 1, 2), [1, 2, 7]);
  });

  it("refuses sizes that would never end", () => {
    assert.throws(() => growingChunks([1, 2], 0), /at least 1/);
    assert.throws(() => growingChunks([1, 2], 1.5), /whole/);
  });
});

const storePath = (name: string) => `/nix/store/${name.padStart(32, "a").slice(-32).replace(/[^a-z0-9]/g, "a")}-${name}`;
const drv = (name: string) => storePath(`${name}.drv`);

/** A made-up graph: `leaves` with no inputs, and `tops` each needing one leaf (its attribute's derivation); top9, the last, also needs an output only this store has. */
function graph(leaves: number, tops: number) {
  const infos = new Map<string, DerivationInfo>();
  const add = (name: string, inputs: string[]) =>
    infos.set(drv(name), { drvPath: drv(name), system: "x86_64-linux", requiredFeatures: [], inputDrvs: inputs, inputOutputs: {}, outputs: { out: storePath(name) } });
  for (let i = 0; i < leaves; i++) add(`leaf${i}`, []);
  for (let i = 0; i < tops; i++) add(`top${i}`, [drv(`leaf${i % leaves}`)]);
  const walk: WalkResult = {
    attributes: [...Array(tops).keys()].map((i) => ({ path: [`top${i}`], drvPath: drv(`top${i}`), type: "regular" as const })).sort((a, b) => (a.path[0]! < b.path[0]! ? -1 : 1)),
    errors: [{ path: ["broken"], message: "error: broken" }],
  };
  const localOutput = storePath("only-here");
  const plan: CachePlan = {
    toBuild: new Set(infos.keys()),
    infos,
    localOnly: new Map([[drv("top9"), [localOutput]]]),
    sourcesOf: (_drv, pushedTo) => [["store:s1", ...pushedTo]],
    reports: [],
  };
  return { walk, plan, localOutput };
}

/** A cache that holds what was uploaded to it; `gate` may keep an upload waiting, `fail` refuses one. */
function recordingCache(name: string, log: string[], options: { gate?: (call: number) => Promise<void>; fail?: (call: number) => boolean } = {}) {
  const holds = new Set<string>();
  let calls = 0;
  const client: BinaryCacheClient = {
    cache: name,
    kind: "NixCache",
    push: true,
    substituter: `http://${name}.invalid`,
    missing: async (paths) => ({ missing: new Set(paths.filter((p) => !holds.has(p))), failed: new Map() }),
    upload: async (paths) => {
      const call = ++calls;
      log.push(`${name} upload ${call} starts`);
      await options.gate?.(call);
      if (options.fail?.(call)) throw new Error("refused");
      for (const p of paths) holds.add(p);
      log.push(`${name} upload ${call} done`);
    },
  };
  return { client, holds, calls: () => calls };
}

const infosOf: PathInfoSource = {
  pathInfos: async (paths) =>
    new Map(paths.map((p): [string, LocalPathInfo] => [p, { storePath: p, narHash: `sha256:${"0".repeat(52)}`, narSize: 1, references: [], deriver: undefined }])),
};
const taskCaches = (clients: BinaryCacheClient[]): TaskCaches => ({
  clients,
  storeId: "s1",
  pathInfos: infosOf,
  configs: [],
  machine: [],
  info: [],
  urls: [],
  optionArgs: [],
  credentialArgs: [],
  warnings: [],
  builtinUrl: undefined,
});

async function stream(walk: WalkResult, plan: CachePlan, clients: BinaryCacheClient[], onSend: (events: EvaluationEvent[]) => void = () => {}) {
  const sent: EvaluationEvent[][] = [];
  const reports = await streamEvents({
    walk,
    plan,
    caches: taskCaches(clients),
    env: process.env,
    signal: new AbortController().signal,
    timings: new PhaseTimings({ now: () => 0 }),
    send: async (events) => {
      onSend(events);
      sent.push(events);
    },
  });
  return { sent, reports };
}

const derivations = (events: EvaluationEvent[]) => events.flatMap((e) => (e.kind === "derivation" ? [e] : []));

describe("streamEvents", () => {
  it("sends the first piece's events before the next piece is pushed, and every event only once what it names holds its .drv and local outputs", async () => {
    const { walk, plan, localOutput } = graph(6, 10);
    const log: string[] = [];
    let firstSent!: () => void;
    const sentOnce = new Promise<void>((resolve) => (firstSent = resolve));
    // The second upload waits for the first events: a stream that sent nothing before its last push would hang here, so it also gives up after a while.
    const cache = recordingCache("shared", log, {
      gate: (call) => (call !== 2 ? Promise.resolve() : Promise.race([sentOnce, new Promise<void>((r) => setTimeout(r, 5000).unref())])),
    });
    const { sent, reports } = await stream(walk, plan, [cache.client], (events) => {
      log.push(`send ${derivations(events).length} derivations, ${events.length - derivations(events).length} others`);
      firstSent();
      for (const e of derivations(events)) {
        assert.deepEqual(e.sources, [["store:s1", "cache:shared"]]);
        assert.ok(cache.holds.has(e.drvPath), `${e.drvPath} is in the cache before its event`);
        if (e.drvPath === drv("top9")) assert.ok(cache.holds.has(localOutput), "so is the output only this store had");
      }
    });

    // 16 derivations: a piece of 8 (upload 1), then the other 8 (upload 2) and top9's local output (upload 3).
    assert.deepEqual(log.filter((l) => l.endsWith("done")), ["shared upload 1 done", "shared upload 2 done", "shared upload 3 done"]);
    assert.ok(log.indexOf("send 8 derivations, 0 others") < log.indexOf("shared upload 2 done"), `the first events went out before the last push ended:\n${log.join("\n")}`);
    assert.equal(log.at(-1), "send 8 derivations, 11 others", "the rest, then the attributes and the error, last");

    const order = sent.flat().map((e) => (e.kind === "derivation" ? e.drvPath : e.path.join(".")));
    assert.equal(new Set(order).size, order.length, "each event once");
    for (const e of derivations(sent.flat())) {
      for (const input of e.inputDrvs) assert.ok(order.indexOf(input) < order.indexOf(e.drvPath), "inputs before dependents");
    }
    assert.deepEqual(reports, [{ cache: "shared", status: "pushed", paths: 17, alreadyPresent: 0 }]);
  });

  it("a cache that fails part-way is reported, named by no later event and not pushed to again", async () => {
    const { walk, plan } = graph(6, 10);
    const log: string[] = [];
    const good = recordingCache("good", log);
    const bad = recordingCache("bad", log, { fail: (call) => call === 2 });
    const { sent, reports } = await stream(walk, plan, [good.client, bad.client]);
    const [first, second] = sent.map(derivations);
    assert.equal(first!.length, 8);
    for (const e of first!) assert.deepEqual(e.sources, [["store:s1", "cache:good", "cache:bad"]], "bad held the first piece");
    for (const e of second!) assert.deepEqual(e.sources, [["store:s1", "cache:good"]], "not the second");
    // The second piece: its .drv files (bad refuses them), then top9's output — not asked of bad after it failed.
    assert.equal(bad.calls(), 2);
    assert.equal(good.calls(), 3);
    assert.deepEqual(reports, [
      { cache: "good", status: "pushed", paths: 17, alreadyPresent: 0 },
      { cache: "bad", status: "failed", reason: 'cache "bad": refused' },
    ]);
  });

  it("without a push cache, everything goes at once", async () => {
    const { walk, plan } = graph(6, 10);
    const { sent, reports } = await stream(walk, plan, []);
    assert.equal(sent.length, 1);
    assert.equal(derivations(sent[0]!).length, 16);
    assert.deepEqual(derivations(sent[0]!)[0]!.sources, [["store:s1"]]);
    assert.deepEqual(reports, []);
  });

  it("a derivation Nimbus cannot report fails the evaluation before anything is pushed or sent", async () => {
    const { walk, plan } = graph(6, 10);
    plan.infos.set(drv("top9"), { ...plan.infos.get(drv("top9"))!, system: "not a system!" });
    const cache = recordingCache("shared", []);
    let sends = 0;
    await assert.rejects(
      streamEvents({ walk, plan, caches: taskCaches([cache.client]), env: process.env, signal: new AbortController().signal, timings: new PhaseTimings({ now: () => 0 }), send: async () => void sends++ }),
      (err) => err instanceof EvaluationFailure && /not a Nix system/.test(err.message),
    );
    assert.equal(cache.calls(), 0);
    assert.equal(sends, 0);
  });

  it("a send that fails stops the pushes still to come", async () => {
    const { walk, plan } = graph(6, 10);
    const cache = recordingCache("shared", []);
    await assert.rejects(
      streamEvents({
        walk,
        plan,
        caches: taskCaches([cache.client]),
        env: process.env,
        signal: new AbortController().signal,
        timings: new PhaseTimings({ now: () => 0 }),
        send: async () => {
          throw new Error("the link is gone");
        },
      }),
      /the link is gone/,
    );
    assert.ok(cache.calls() <= 2, `${cache.calls()} uploads`);
  });
});
