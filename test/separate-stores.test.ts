/**
 * Two machines, not one: agents A and B each run in their own mount namespace with its own
 * /nix (test/support/separate-store.ts), so neither sees what the other built. They share a
 * signed binary cache — a file:// directory, then a plain HTTP cache served by this test — and
 * nothing else (the built-in cache is turned off here: test/builtin-cache.test.ts has it). A chain across them: `a` needs a feature only A has, `b` depends on `a` and
 * needs a feature only B has. A evaluates (B starts only after), so B has neither the .drv
 * files nor `a`'s output until it fetches them from the cache.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { AgentList, DerivationLog, DerivationPage, type JobDerivationView, JobView } from "@nimbus/protocol";
import { FIRST_CHUNK } from "../packages/agent/src/push-chunks.ts";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { type HttpBinaryCache, startHttpBinaryCache } from "./support/http-binary-cache.ts";
import { createSeparateStore, type SeparateStore } from "./support/separate-store.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const execFileAsync = promisify(execFile);

let stack: TestStack;
let token: string;
let dir: string;
let markers: string;
let keys: { secret: string; public: string };
const agents: AgentProcess[] = [];
const stores: SeparateStore[] = [];
const caches: HttpBinaryCache[] = [];

before(async () => {
  stack = await startTestStack({ sweepIntervalMs: 0 });
  token = (await stack.createToken("separate-stores")).token;
  dir = await mkdtemp(join(tmpdir(), "nimbus-separate-"));
  // Builders run as the nixbld users in either namespace: they append here to say they ran.
  markers = await mkdtemp(join(tmpdir(), "nimbus-separate-markers-"));
  await chmod(markers, 0o1777);
  await execFileAsync("nix-store", ["--generate-binary-cache-key", "nimbus-shared-1", join(dir, "sk"), join(dir, "pk")]);
  keys = { secret: await readFile(join(dir, "sk"), "utf8"), public: await readFile(join(dir, "pk"), "utf8") };
});
after(async () => {
  for (const agent of agents) agent.child.kill("SIGKILL");
  await Promise.all(agents.map((a) => a.exited));
  for (const cache of caches) await cache.close();
  await stack.cleanup();
  for (const store of stores) await store.remove();
  await rm(dir, { recursive: true, force: true });
  await rm(markers, { recursive: true, force: true });
});

/** One signed NixCache named "shared" that both agents read and push to. */
const binaryCaches = (storeURI: string) =>
  JSON.stringify({ shared: { kind: "NixCache", storeURI, publicKeys: [keys.public], signingKeys: [keys.secret] } });

/** An agent on its own machine (a fresh store), with `features` and the shared cache. */
async function machine(name: string, features: string[], storeURI: string, extraToml: string[] = []): Promise<{ agent: AgentProcess; store: SeparateStore }> {
  const store = await createSeparateStore();
  stores.push(store);
  const agent = await startAgentProcess(
    stack.url,
    token,
    [`systemFeatures = ${JSON.stringify(features)}`, `binaryCachesPath = "binary-caches.json"`, "builtinCache = false", ...extraToml, "[labels]", `name = "${name}"`].join("\n"),
    {},
    {
      files: { "binary-caches.json": binaryCaches(storeURI) },
      // The agent's Nix keeps its lookups in that machine's own XDG cache.
      spawn: (command, args, options) => store.spawn(command, args, { ...options, env: { ...options.env, XDG_CACHE_HOME: store.env["XDG_CACHE_HOME"] } }),
    },
  );
  agents.push(agent);
  return { agent, store };
}

/** ci.nix with `a` (needs fa), `b` (needs a and fb), and optionally `c` (needs a, any agent) and `x` (needs fa, nothing else). */
function ciNix(nonce: string, withC = false, withX = false): string {
  const mk = (name: string, features: string[], script: string) =>
    `  ${name} = derivation { name = "sep-${name}-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; ` +
    `args = [ "-c" ${JSON.stringify(`echo built >> ${markers}/${name}-${nonce}; ${script}`)} ]; requiredSystemFeatures = ${JSON.stringify(features).replace(/,/g, " ")}; };`;
  const a = "$" + "{self.a}";
  return [
    "let self = {",
    mk("a", ["fa"], "echo a > $out"),
    mk("b", ["fb"], `echo b; echo ${a} > $out`),
    ...(withC ? [mk("c", [], `echo c; echo ${a} > $out`)] : []),
    ...(withX ? [mk("x", ["fa"], "echo x > $out")] : []),
    "}; in self",
  ].join("\n");
}

const builds = async (label: string) =>
  (await readFile(join(markers, label), "utf8").catch(() => "")).split("\n").filter(Boolean).length;

async function trigger(repoPath: string): Promise<string> {
  const result = await runCli(["trigger", repoPath], { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

const job = async (id: string) => JobView.parse((await stack.api("GET", `/api/jobs/${id}`)).body);
const derivations = async (id: string) => DerivationPage.parse((await stack.api("GET", `/api/jobs/${id}/derivations?limit=100`)).body).derivations;
const named = (all: JobDerivationView[], name: string) => all.find((d) => d.drvPath.includes(`-sep-${name}-`))!;
const agentNamed = async (name: string) => AgentList.parse((await stack.api("GET", "/api/agents")).body).agents.find((a) => a.labels.name === name);

/** `eventually`, with what the agents said (read when it fails, not when it starts). */
async function waitFor<T>(check: () => Promise<T | undefined>, what: string, agentsOf: AgentProcess[], timeoutMs = 60_000): Promise<T> {
  try {
    return await eventually(check, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nagents said:\n${agentsOf.map((a) => a.output().slice(-4000)).join("\n---\n")}`);
  }
}

/** A evaluates alone; B joins once the job is building. Returns the job id. */
async function runChain(storeURI: string, nonce: string, withC = false, options: { withX?: boolean; aToml?: string[] } = {}) {
  const a = await machine(`A-${nonce}`, ["fa"], storeURI, options.aToml);
  await waitFor(() => agentNamed(`A-${nonce}`), "agent A to connect", [a.agent], 30_000);
  const repo = await makeGitRepo(`chain-${nonce}`, { "ci.nix": ciNix(nonce, withC, options.withX) });
  const jobId = await trigger(repo.path);
  await waitFor(async () => ((await job(jobId)).status !== "evaluating" ? true : undefined), "the evaluation", [a.agent]);
  const b = await machine(`B-${nonce}`, ["fb"], storeURI);
  await waitFor(() => agentNamed(`B-${nonce}`), "agent B to connect", [b.agent], 30_000);
  return { jobId, a, b };
}

const finished = (jobId: string, agentsOf: AgentProcess[]) =>
  waitFor(
    async () => {
      const j = await job(jobId);
      return ["succeeded", "failed", "cancelled"].includes(j.status) ? j : undefined;
    },
    `job ${jobId} to finish`,
    agentsOf,
    120_000,
  );

describe("two machines with separate Nix stores", () => {
  for (const kind of ["file", "http"] as const) {
    it(`build a chain across them through a shared ${kind === "file" ? "file://" : "plain HTTP"} cache: B fetches a and the .drv, never builds a`, async () => {
      const nonce = randomBytes(5).toString("hex");
      let storeURI = `file://${join(dir, `cache-${nonce}`)}?compression=zstd`;
      if (kind === "http") {
        const http = await startHttpBinaryCache({ dir: join(dir, `http-${nonce}`) });
        caches.push(http);
        storeURI = http.url;
      }
      const { jobId, a, b } = await runChain(storeURI, nonce);
      const done = await finished(jobId, [a.agent, b.agent]);
      assert.equal(done.status, "succeeded", JSON.stringify(done));

      const all = await derivations(jobId);
      const drvA = named(all, "a");
      const drvB = named(all, "b");
      assert.equal(drvA.builtBy?.labels.name, `A-${nonce}`);
      assert.equal(drvB.builtBy?.labels.name, `B-${nonce}`);
      assert.ok(drvA.sources?.includes("cache:shared"), `a's outputs are recorded in the cache: ${drvA.sources}`);
      assert.ok(drvA.sources?.some((s) => s.startsWith("store:")), "and in A's store");

      const log = DerivationLog.parse((await stack.api("GET", `/api/derivations/${encodeURIComponent(drvB.drvPath)}/log`)).body).lines;
      const aOut = drvA.outputs.out!;
      assert.ok(log.some((l) => l.includes(`copying path '${aOut}'`)), `b's log shows a fetched:\n${log.join("\n")}`);
      assert.ok(log.some((l) => l.includes(`copying path '${drvB.drvPath}'`)), `…and b's .drv fetched:\n${log.join("\n")}`);
      assert.ok(!log.some((l) => l.includes(`building '${drvA.drvPath}'`)), "a was not built for b");
      assert.ok(log.some((l) => /pushed \d+ paths? to shared/.test(l)), "b's outputs were pushed");

      assert.equal(await builds(`a-${nonce}`), 1, "a was built once, by A");
      assert.equal(await builds(`b-${nonce}`), 1);
      assert.equal((await b.store.run("test", ["-e", aOut])).code, 0, "B's store holds a's output, substituted");
      assert.notEqual((await a.store.run("test", ["-e", drvB.outputs.out!])).code, 0, "A never had b's output: the stores are separate");

      for (const agent of [a.agent, b.agent]) agent.child.kill("SIGTERM");
      await Promise.all([a.agent.exited, b.agent.exited]);
    });
  }

  it("while A pushes a's outputs its one slot takes x, but b waits for the push: B, on its own store, fetches a from the cache once pushed", async () => {
    const nonce = randomBytes(5).toString("hex");
    // The .drv files go up during the evaluation; the outputs' pushes wait at their narinfo (the commit point) until the test lets them.
    const outputNarinfo = (urlPath: string, body: Buffer) => urlPath.endsWith(".narinfo") && !/^StorePath: \S+\.drv$/m.test(body.toString());
    const http = await startHttpBinaryCache({ dir: join(dir, `held-${nonce}`), holdWrites: outputNarinfo });
    caches.push(http);
    const { jobId, a, b } = await runChain(http.url, nonce, false, { withX: true, aToml: ["concurrentTasks = 1"] });
    const both = await waitFor(
      async () => {
        const all = await derivations(jobId);
        return ["a", "x"].every((n) => named(all, n).status === "building") && http.held() >= 2 ? all : undefined;
      },
      "A to build a and x, one slot, while their pushes wait",
      [a.agent, b.agent],
    );
    assert.equal(named(both, "b").status, "waiting", "b waits for a's result, which waits for the push");
    assert.equal(await builds(`a-${nonce}`), 1);
    assert.equal(await builds(`x-${nonce}`), 1, "x ran while a's outputs were still going up");
    assert.equal(await builds(`b-${nonce}`), 0);
    assert.equal((await job(jobId)).status, "building", "the job waits for the pushes");
    assert.equal((await agentNamed(`A-${nonce}`))?.runningTasks, 0, "neither push holds A's slot");

    http.set({ holdWrites: undefined });
    const done = await finished(jobId, [a.agent, b.agent]);
    assert.equal(done.status, "succeeded", JSON.stringify(done));
    const all = await derivations(jobId);
    assert.ok(named(all, "a").sources?.includes("cache:shared"), "a's result says where its outputs were pushed");
    assert.equal(named(all, "b").builtBy?.labels.name, `B-${nonce}`);
    assert.equal(await builds(`a-${nonce}`), 1, "B fetched a, never built it");
    assert.equal((await b.store.run("test", ["-e", named(all, "a").outputs.out!])).code, 0, "a's output reached B's store from the cache");
    const agentA = await agentNamed(`A-${nonce}`);
    assert.equal(agentA?.runningTasks, 0, "A's slot count is whole again");
    assert.deepEqual(agentA?.tasks, []);
    for (const agent of [a.agent, b.agent]) agent.child.kill("SIGTERM");
    await Promise.all([a.agent.exited, b.agent.exited]);
  });

  it("the first .drv files pushed are built before the last are pushed: B builds an early derivation, fetching its .drv from the cache, while the late ones' push waits", async () => {
    const nonce = randomBytes(5).toString("hex");
    // Early derivations fill the evaluation's first piece pushed; late ones the second, whose narinfos (the commit point of a push) wait until the test lets them.
    const late = (urlPath: string, body: Buffer) => urlPath.endsWith(".narinfo") && /^StorePath: \S+-late-\S+\.drv$/m.test(body.toString());
    const http = await startHttpBinaryCache({ dir: join(dir, `stream-${nonce}`), holdWrites: late });
    caches.push(http);
    // Only B builds them (a feature of its own): A evaluates with its one slot, B joins meanwhile.
    const feature = `streamed-${nonce}`;
    const mk = (kind: string) =>
      `(builtins.genList (i: { name = "${kind[0]}\${toString i}"; value = derivation { name = "stream-${kind}-\${toString i}-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo \${toString i} > $out" ]; requiredSystemFeatures = [ "${feature}" ]; }; }) ${FIRST_CHUNK})`;
    const a = await machine(`A-${nonce}`, ["fa"], http.url, ["concurrentTasks = 1"]);
    await waitFor(() => agentNamed(`A-${nonce}`), "agent A to connect", [a.agent], 30_000);
    const repo = await makeGitRepo(`stream-${nonce}`, { "ci.nix": `builtins.listToAttrs (${mk("early")} ++ ${mk("late")})\n` });
    const jobId = await trigger(repo.path);
    await waitFor(async () => ((await job(jobId)).evaluation.status === "running" ? true : undefined), "A to evaluate", [a.agent]);
    const b = await machine(`B-${nonce}`, [feature], http.url);

    const early = await waitFor(
      async () => (await derivations(jobId)).find((d) => d.drvPath.includes("-stream-early-") && d.status === "succeeded"),
      "B to build an early derivation",
      [a.agent, b.agent],
    );
    assert.ok(http.held() >= 1, "the late .drv files are still being pushed");
    assert.equal((await job(jobId)).status, "evaluating");
    const registered = await derivations(jobId);
    assert.equal(registered.filter((d) => d.drvPath.includes("-stream-late-")).length, 0, "no late derivation was sent before its .drv was pushed");
    assert.equal(early.builtBy?.labels.name, `B-${nonce}`);
    const log = DerivationLog.parse((await stack.api("GET", `/api/derivations/${encodeURIComponent(early.drvPath)}/log`)).body).lines;
    assert.ok(log.some((l) => l.includes(`copying path '${early.drvPath}'`)), `B, on its own store, fetched the .drv from the cache:\n${log.join("\n")}`);

    http.set({ holdWrites: undefined });
    const building = await waitFor(async () => {
      const j = await job(jobId);
      return j.status !== "evaluating" ? j : undefined;
    }, "the evaluation to end once the late .drv files are pushed", [a.agent, b.agent]);
    assert.equal(building.evaluation.status, "succeeded");
    assert.equal(building.evaluation.cacheProblems, undefined, "every piece reached the cache");
    assert.equal((await derivations(jobId)).filter((d) => d.drvPath.includes("-stream-late-")).length, FIRST_CHUNK);
    assert.equal((await stack.api("POST", `/api/jobs/${jobId}/cancel`)).status, 200);
    for (const agent of [a.agent, b.agent]) agent.child.kill("SIGTERM");
    await Promise.all([a.agent.exited, b.agent.exited]);
  });

  it("a rejected push keeps the dependents with the machine that has the inputs, or says why they wait — never a failed build", async () => {
    const nonce = randomBytes(5).toString("hex");
    const http = await startHttpBinaryCache({ dir: join(dir, `refusing-${nonce}`), rejectWrites: "this cache is read-only today" });
    caches.push(http);
    const { jobId, a, b } = await runChain(http.url, nonce, true);
    // c (no feature) can only go to A: a's output and every .drv are in A's store alone.
    const c = await waitFor(
      async () => {
        const found = named(await derivations(jobId), "c");
        return found.status === "succeeded" ? found : undefined;
      },
      "c to be built",
      [a.agent, b.agent],
    );
    assert.equal(c.builtBy?.labels.name, `A-${nonce}`, "c stayed with the machine that has a");
    const drvB = await waitFor(
      async () => {
        const found = named(await derivations(jobId), "b");
        return found.waitingForInputs ? found : undefined;
      },
      "b to show why it waits",
      [a.agent, b.agent],
    );
    assert.equal(drvB.status, "queued");
    assert.match(drvB.waitingForInputs!.reason, /^inputs only on agent \S+; no shared cache$/);
    const drvA = named(await derivations(jobId), "a");
    assert.deepEqual(
      drvA.sources?.map((s) => s.split(":")[0]),
      ["store"],
      "a's outputs are only in A's store",
    );
    assert.match(drvA.cacheProblems?.join("\n") ?? "", /push to shared failed: cache "shared" refused the push: .*403/s);

    const current = await job(jobId);
    assert.equal(current.status, "building");
    assert.equal(current.counts.failed ?? 0, 0, "nothing failed");
    assert.match(current.evaluation.cacheProblems?.join("\n") ?? "", /push to shared failed/, "the .drv push failure is on the job");
    const cli = await runCli(["job", jobId], { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /waiting for an agent that can obtain their inputs:\n {2}1 × inputs only on agent \S+; no shared cache/);
    const agentsNow = AgentList.parse((await stack.api("GET", "/api/agents")).body).agents;
    const agentA = agentsNow.find((x) => x.labels.name === `A-${nonce}`)!;
    assert.match(agentA.cacheProblems?.map((p) => p.problem).join("\n") ?? "", /push to shared failed/, "the agent shows the cache's condition");
    assert.equal(await builds(`b-${nonce}`), 0, "b never ran anywhere");
    for (const agent of [a.agent, b.agent]) agent.child.kill("SIGTERM");
    await Promise.all([a.agent.exited, b.agent.exited]);
  });
});
