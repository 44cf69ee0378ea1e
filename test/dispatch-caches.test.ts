/**
 * Dispatch respects where things are (core obtaining.ts), through the real local stack with
 * protocol-level agents that report their stores and caches: a build goes only to an agent that
 * can obtain its inputs (those of every part of a split event); one no agent can obtain waits
 * with its reason, out of its queue's way, until an agent that can appears (the sweeper offers
 * it again) or an agent's caches change.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type CacheInfo, type CacheReport, DerivationPage, type EvaluateTask, type EvaluationEvent, JobView } from "@nimbus/protocol";
import { sweep } from "@nimbus/service";
import { sendSignedPush as sendPush } from "@nimbus/cli";
import { runCli } from "./support/agent-process.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const drv = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;
const STORE_X = "x/aaaaaaaaaaaa";
const shared: CacheInfo = { name: "shared", kind: "NixCache", publicKeys: ["shared-1:AAAA"], push: true, pull: true };
const other: CacheInfo = { name: "other", kind: "NixCache", publicKeys: ["other-1:AAAA"], push: false, pull: true };

const derivation = (name: string, inputs: string[], features: string[], sources: string[][]): Extract<EvaluationEvent, { kind: "derivation" }> => ({
  kind: "derivation",
  drvPath: drv(name),
  system: "x86_64-linux",
  requiredFeatures: features,
  inputDrvs: inputs.map(drv),
  outputs: { out: `/nix/store/${name}-out` },
  sources,
});
/** The sweeper's re-send window here, shorter than two heartbeats (60 s), after which it closes a connection as silent. */
const REQUEUE_AFTER_MS = 10_000;
/** Past the re-send window, within two heartbeats of every agent's last word: queued work is offered again, nobody is given up. */
const resendTime = () => new Date(Date.now() + REQUEUE_AFTER_MS + 5_000);
const attribute = (name: string): EvaluationEvent => ({ kind: "attribute", path: [name], drvPath: drv(name), attributeType: "regular", needsBuild: true });

// X evaluated: every .drv is in X's store and the shared cache. p needs fx (only X); its push fails.
// q0…q5 need p and nothing else: any agent may build them, only X's store has p. r needs p and fr
// (only Z, another machine). s needs a path the evaluator found in cache "other", read by nobody yet.
const drvNeed = [`store:${STORE_X}`, "cache:shared"];
const QS = ["q0", "q1", "q2", "q3", "q4", "q5"];
const EVENTS: EvaluationEvent[] = [
  derivation("p", [], ["fx"], [drvNeed]),
  ...QS.map((q) => derivation(q, ["p"], [], [drvNeed])),
  derivation("r", ["p"], ["fr"], [drvNeed]),
  derivation("s", [], ["fs"], [drvNeed, ["cache:other"]]),
  ...["p", ...QS, "r", "s"].map(attribute),
];

describe("dispatch by where the inputs are", () => {
  let stack: TestStack;
  let token: string;
  let x: ScriptedAgent;
  let y: ScriptedAgent;
  let z: ScriptedAgent;
  let v: ScriptedAgent;
  let jobId: string | undefined;
  const env = () => ({ NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });
  const derivations = async () => DerivationPage.parse((await stack.api("GET", `/api/jobs/${jobId}/derivations?limit=100`)).body).derivations;
  const find = async (name: string) => (await derivations()).find((d) => d.drvPath === drv(name))!;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0, environment: { NIMBUS_REQUEUE_AFTER_MS: String(REQUEUE_AFTER_MS) } });
    token = (await stack.createToken("caches")).token;
    // The first job is the graph above; later ones are empty.
    const evaluate = (task: EvaluateTask) => (task.jobId === jobId || jobId === undefined ? EVENTS : []);
    x = ScriptedAgent.create(
      "x",
      { storeId: STORE_X, caches: [shared], pushCaches: ["shared"], systemFeatures: ["fx"], concurrentTasks: 2 },
      { evaluate, buildMs: 30, build: () => ({ status: "succeeded", caches: [{ cache: "shared", status: "failed", reason: "HTTP 403: read-only" }] }) },
    );
    y = ScriptedAgent.create("y", { storeId: "y/bbbbbbbbbbbb", caches: [shared], systemFeatures: [], concurrentTasks: 4, systems: ["x86_64-linux", "aarch64-linux"] }, { buildMs: 5 });
    z = ScriptedAgent.create("z", { storeId: "z/cccccccccccc", caches: [shared], systemFeatures: ["fr"], concurrentTasks: 2 }, { buildMs: 5 });
    v = ScriptedAgent.create("v", { storeId: "v/dddddddddddd", caches: [shared], systemFeatures: ["fs"], concurrentTasks: 2 }, { buildMs: 5 });
    // X alone first, so X evaluates.
    await x.connect(stack.agentSocketUrl, token);
    const pushed = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/caches", commit: "cac4e".padEnd(40, "0") });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    jobId = (pushed.body as { jobId: string }).jobId;
    await eventually(async () => ((await stack.api("GET", `/api/jobs/${jobId}`)).body.status === "building" ? true : undefined), "the evaluation");
    for (const agent of [y, z, v]) await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    for (const agent of [x, y, z, v]) agent.close();
    await stack.cleanup();
  });

  it("an evaluation is for every system the connected agents can build, whichever agent evaluates", async () => {
    assert.deepEqual(x.evaluations[0]?.systems, ["x86_64-linux"], "X alone was connected");
    const pushed = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/systems", commit: "5e75".padEnd(40, "0") });
    const second = (pushed.body as { jobId: string }).jobId;
    const task = await eventually(async () => [x, y, z, v].flatMap((a) => a.evaluations).find((e) => e.jobId === second), "the second evaluation");
    assert.deepEqual(task.systems, ["aarch64-linux", "x86_64-linux"], "Y can build aarch64-linux: its flake outputs are part of the job");
  });

  it("inputs only in one agent's store (the push failed): its dependents go to that agent, never to one that cannot obtain them", async () => {
    await eventually(async () => (QS.every((q) => x.settled.includes(drv(q))) ? true : undefined), "every q to be built by X", 20_000);
    assert.deepEqual(y.builds.map((b) => b.drvPath), [], "Y, idle with free slots, was never given one");
    const p = await find("p");
    assert.deepEqual(p.sources, [`store:${STORE_X}`], "p is only in X's store");
    assert.deepEqual(p.cacheProblems, ["push to shared failed: HTTP 403: read-only"]);
    const q = x.builds.find((b) => b.drvPath === drv("q0"))!;
    assert.deepEqual(q.inputs, [drv("p").replace(/\.drv$/, "-out")], "the build task names its input's output");
    assert.equal(q.inputCaches, undefined, "held by no cache");
  });

  it("one no agent can obtain waits with its reason and does not hold up its queue", async () => {
    const r = await eventually(async () => {
      const found = await find("r");
      return found.waitingForInputs ? found : undefined;
    }, "r's reason");
    assert.equal(r.status, "queued");
    assert.equal(r.waitingForInputs!.reason, "inputs only on agent x; no shared cache");
    const s = await find("s");
    assert.equal(s.waitingForInputs?.reason, 'needs paths held only by cache "other", which no agent that can build it reads');
    assert.deepEqual(z.builds, []);
    const cli = await runCli(["job", jobId!], env());
    assert.match(cli.stdout, /waiting for an agent that can obtain their inputs:\n {2}1 × inputs only on agent x; no shared cache\n {2}1 × needs paths held only by cache "other"/);
    const agents = (await stack.api("GET", "/api/agents")).body.agents as Array<{ hostname: string; cacheProblems?: Array<{ cache: string; problem: string }> }>;
    assert.deepEqual(agents.find((a) => a.hostname === "x")?.cacheProblems?.map((p) => [p.cache, p.problem]), [["shared", "push to shared failed: HTTP 403: read-only"]]);
  });

  it("the sweeper offers waiting builds again: taken by an agent that reads the cache after a reload (agent-info), and one on the machine that has the inputs", async () => {
    v.changeInfo({ caches: [shared, other] });
    await eventually(async () => ((await find("s")).waitingForInputs ? undefined : true), "s to be no longer blocked");
    const w = ScriptedAgent.create("w", { storeId: STORE_X, systemFeatures: ["fr"], concurrentTasks: 1 }, { buildMs: 5 });
    await w.connect(stack.agentSocketUrl, token);
    try {
      assert.equal((await sweep(resendTime())).derivationsResent, 2, "r and s, each deleted from its queue when nobody could take it");
      await eventually(async () => (v.settled.includes(drv("s")) ? true : undefined), "V to build s");
      await eventually(async () => (w.settled.includes(drv("r")) ? true : undefined), "W to build r");
      assert.deepEqual(z.builds, [], "Z never got r");
      await eventually(async () => (JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body).status === "succeeded" ? true : undefined), "the job to succeed");
    } finally {
      w.close();
    }
  });
});

// A derivation whose inputs do not fit in one event arrives in parts (docs/protocol.md): where
// it may be built depends on the inputs of every part, not only the first one registered.
describe("a derivation registered in parts needs the inputs of every part", () => {
  let stack: TestStack;
  let x: ScriptedAgent;
  let z: ScriptedAgent;
  let jobId: string | undefined;
  // c0 and c1 reach the shared cache; p's push fails, so p is only in X's store. "wide" lists c0
  // and c1 in its first part, p in its second; only Z (which reads the cache) can build it.
  const pushOk: CacheReport[] = [{ cache: "shared", status: "pushed", paths: 1, alreadyPresent: 0 }];
  const pushFailed: CacheReport[] = [{ cache: "shared", status: "failed", reason: "HTTP 403: read-only" }];
  const events: EvaluationEvent[] = [
    ...["c0", "c1", "p"].map((name) => derivation(name, [], ["fx"], [drvNeed])),
    { ...derivation("wide", ["c0", "c1"], ["fw"], [drvNeed]), part: { index: 0, count: 2 } },
    { ...derivation("wide", ["p"], ["fw"], [drvNeed]), part: { index: 1, count: 2 } },
    attribute("wide"),
  ];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("parts");
    x = ScriptedAgent.create(
      "x",
      { storeId: STORE_X, caches: [shared], pushCaches: ["shared"], systemFeatures: ["fx"], concurrentTasks: 3 },
      { evaluate: () => events, batchSize: 1, buildMs: 5, build: (task) => ({ status: "succeeded", caches: task.drvPath === drv("p") ? pushFailed : pushOk }) },
    );
    z = ScriptedAgent.create("z", { storeId: "z/cccccccccccc", caches: [shared], systemFeatures: ["fw"], concurrentTasks: 2 }, { buildMs: 5 });
    // X alone first, so X evaluates.
    await x.connect(stack.agentSocketUrl, token);
    const pushed = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/parts", commit: "9a475".padEnd(40, "0") });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    jobId = (pushed.body as { jobId: string }).jobId;
    await eventually(async () => (x.evaluations.length > 0 ? true : undefined), "X to evaluate");
    await z.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    x.close();
    z.close();
    await stack.cleanup();
  });

  it("waits for an agent that can obtain the second part's input, and is not given to one that cannot", async () => {
    const wide = await eventually(async () => {
      const page = DerivationPage.parse((await stack.api("GET", `/api/jobs/${jobId}/derivations?limit=100`)).body).derivations;
      const found = page.find((d) => d.drvPath === drv("wide"));
      if (z.builds.length > 0) throw new Error(`Z, which cannot obtain p, was given ${z.builds.map((b) => b.drvPath).join(", ")}`);
      return found?.waitingForInputs ? found : undefined;
    }, "wide's reason");
    assert.equal(wide.status, "queued");
    assert.equal(wide.waitingForInputs!.reason, "inputs only on agent x; no shared cache");
    assert.deepEqual(z.builds, [], "Z reads the cache, which holds c0 and c1 but not p");
  });
});
