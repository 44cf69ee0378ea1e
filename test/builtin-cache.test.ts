/**
 * The built-in cache end to end (docs/cache.md): two agents on separate Nix stores and no
 * binary-caches.json at all build a chain across them, the second fetching from the cache
 * Nimbus serves; a third store, given only the cache's URL, public key and a read token,
 * substitutes what an agent built with plain `nix-store --realise`; a write token pushes with
 * `nix copy --to`, a read token cannot.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AgentList, CacheInfoView, CreateCacheTokenResponse, DerivationLog, DerivationPage, type JobDerivationView, JobView, type ServiceMessage } from "@nimbus/protocol";
import { gatewayManagement } from "../packages/service/src/platform/aws-clients.ts";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { createSeparateStore, type SeparateStore } from "./support/separate-store.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let token: string;
let dir: string;
let markers: string;
const agents: AgentProcess[] = [];
const stores: SeparateStore[] = [];

before(async () => {
  stack = await startTestStack({ sweepIntervalMs: 0 });
  token = (await stack.createToken("builtin-cache")).token;
  dir = await mkdtemp(join(tmpdir(), "nimbus-builtin-"));
  markers = await mkdtemp(join(tmpdir(), "nimbus-builtin-markers-"));
  await chmod(markers, 0o1777);
});
after(async () => {
  for (const agent of agents) agent.child.kill("SIGKILL");
  await Promise.all(agents.map((a) => a.exited));
  await stack.cleanup();
  for (const store of stores) await store.remove();
  await rm(dir, { recursive: true, force: true });
  await rm(markers, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });

async function newStore(): Promise<SeparateStore> {
  const store = await createSeparateStore();
  stores.push(store);
  return store;
}

/** An agent on its own machine with `features`, and no binary-caches.json. */
async function machine(name: string, features: string[]): Promise<{ agent: AgentProcess; store: SeparateStore }> {
  const store = await newStore();
  const agent = await startAgentProcess(stack.url, token, [`systemFeatures = ${JSON.stringify(features)}`, "[labels]", `name = "${name}"`].join("\n"), {}, {
    spawn: (command, args, options) => store.spawn(command, args, { ...options, env: { ...options.env, XDG_CACHE_HOME: store.env["XDG_CACHE_HOME"] } }),
  });
  agents.push(agent);
  return { agent, store };
}

function ciNix(nonce: string): string {
  const mk = (name: string, features: string[], script: string) =>
    `  ${name} = derivation { name = "bc-${name}-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; ` +
    `args = [ "-c" ${JSON.stringify(`echo built >> ${markers}/${name}-${nonce}; ${script}`)} ]; requiredSystemFeatures = ${JSON.stringify(features).replace(/,/g, " ")}; };`;
  const a = "$" + "{self.a}";
  return ["let self = {", mk("a", ["fa"], "echo a > $out"), mk("b", ["fb"], `echo b; echo ${a} > $out`), "}; in self"].join("\n");
}

const builds = async (label: string) => (await readFile(join(markers, label), "utf8").catch(() => "")).split("\n").filter(Boolean).length;
const job = async (id: string) => JobView.parse((await stack.api("GET", `/api/jobs/${id}`)).body);
const derivations = async (id: string) => DerivationPage.parse((await stack.api("GET", `/api/jobs/${id}/derivations?limit=100`)).body).derivations;
const named = (all: JobDerivationView[], name: string) => all.find((d) => d.drvPath.includes(`-bc-${name}-`))!;
const agentNamed = async (name: string) => AgentList.parse((await stack.api("GET", "/api/agents")).body).agents.find((a) => a.labels.name === name);

async function waitFor<T>(check: () => Promise<T | undefined>, what: string, agentsOf: AgentProcess[], timeoutMs = 90_000): Promise<T> {
  try {
    return await eventually(check, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nagents said:\n${agentsOf.map((a) => a.output().slice(-5000)).join("\n---\n")}`);
  }
}

async function cacheToken(access: "read" | "write"): Promise<string> {
  const created = await cli(["cache", "token", "create", `--${access}`, "--name", `test ${access}`]);
  assert.equal(created.code, 0, created.stderr);
  return created.stdout.trim();
}

/** A netrc for the stack's host with `secret` as the password, as `nimbus cache info` says to write it. */
async function netrcWith(secret: string): Promise<string> {
  const file = join(dir, `netrc-${randomBytes(4).toString("hex")}`);
  await writeFile(file, `machine ${new URL(stack.url).hostname} login token password ${secret}\n`, { mode: 0o600 });
  return file;
}

let built: { aOut: string; drvA: string } | undefined;

describe("the built-in cache", () => {
  it("two machines with separate stores and no binary-caches.json build a chain: B fetches a and the .drv from the built-in cache", async () => {
    const nonce = randomBytes(5).toString("hex");
    const a = await machine(`A-${nonce}`, ["fa"]);
    await waitFor(() => agentNamed(`A-${nonce}`), "agent A to connect", [a.agent], 30_000);
    const info = await agentNamed(`A-${nonce}`);
    assert.deepEqual(info?.caches, [{ name: "nimbus", kind: "NimbusCache", publicKeys: [], push: true, pull: true }], "the agent uses the built-in cache by default");
    assert.ok(info?.substituters.includes(`${stack.url}/cache`));

    // What the service answers completions with: a build's outputs are published with its result, never completed apart.
    const completed: string[] = [];
    gatewayManagement().middlewareStack.add(
      (next) => async (args) => {
        const data = (args.input as { Data?: Uint8Array | string }).Data;
        const message = data === undefined ? undefined : (JSON.parse(Buffer.from(data).toString()) as ServiceMessage);
        if (message?.type === "cache-upload-result") completed.push(...message.paths.map((p) => p.storePath));
        return next(args);
      },
      { step: "initialize", name: "completions" },
    );
    const repo = await makeGitRepo(`bc-${nonce}`, { "ci.nix": ciNix(nonce) });
    const triggered = await cli(["trigger", repo.path]);
    assert.equal(triggered.code, 0, triggered.stderr);
    const jobId = triggered.stdout.trim();
    await waitFor(async () => ((await job(jobId)).status !== "evaluating" ? true : undefined), "the evaluation", [a.agent]);
    const b = await machine(`B-${nonce}`, ["fb"]);
    const done = await waitFor(
      async () => {
        const j = await job(jobId);
        return ["succeeded", "failed", "cancelled"].includes(j.status) ? j : undefined;
      },
      `job ${jobId} to finish`,
      [a.agent, b.agent],
      120_000,
    );
    gatewayManagement().middlewareStack.remove("completions");
    assert.equal(done.status, "succeeded", `${JSON.stringify(done)}\n${a.agent.output().slice(-3000)}\n${b.agent.output().slice(-3000)}`);

    const all = await derivations(jobId);
    const drvA = named(all, "a");
    const drvB = named(all, "b");
    assert.equal(drvA.builtBy?.labels.name, `A-${nonce}`);
    assert.equal(drvB.builtBy?.labels.name, `B-${nonce}`);
    assert.ok(drvA.sources?.includes("cache:nimbus"), `a's outputs are recorded in the built-in cache: ${drvA.sources}`);
    const log = DerivationLog.parse((await stack.api("GET", `/api/derivations/${encodeURIComponent(drvB.drvPath)}/log`)).body).lines;
    const aOut = drvA.outputs.out!;
    assert.ok(log.some((l) => l.includes(`copying path '${aOut}' from '${stack.url}/cache'`)), `b's log shows a fetched from the built-in cache:\n${log.join("\n")}`);
    assert.ok(log.some((l) => l.includes(`copying path '${drvB.drvPath}'`)), `…and b's .drv fetched:\n${log.join("\n")}`);
    assert.ok(log.some((l) => /pushed \d+ paths? to nimbus \(\d+ already there; 1 published with the build's result\)/.test(l)), "b's outputs were pushed");
    assert.ok(completed.length > 0, "the evaluation's .drv files were completed");
    assert.deepEqual(completed.filter((p) => !p.endsWith(".drv")), [], "no output was completed apart from its build's result");
    assert.equal(await builds(`a-${nonce}`), 1, "a was built once, by A");
    assert.equal(await builds(`b-${nonce}`), 1);
    assert.equal((await b.store.run("test", ["-e", aOut])).code, 0, "B's store holds a's output, substituted");

    const cacheInfo = CacheInfoView.parse((await stack.api("GET", "/api/cache")).body);
    assert.ok(cacheInfo.pathCount >= 4, `a, b and their .drv files are published: ${JSON.stringify(cacheInfo)}`);
    assert.ok(cacheInfo.fileBytes > 0);
    built = { aOut, drvA: drvA.drvPath };
    for (const agent of [a.agent, b.agent]) agent.child.kill("SIGTERM");
    await Promise.all([a.agent.exited, b.agent.exited]);
  });

  it("a third store with only the URL, the public key and a read token substitutes what an agent built; no token, a revoked one, or a wrong key cannot", async () => {
    assert.ok(built, "the chain test ran first");
    const info = await cli(["cache", "info"]);
    assert.equal(info.code, 0, info.stderr);
    const { url, publicKey } = CacheInfoView.parse(JSON.parse((await cli(["cache", "info", "--json"])).stdout));
    assert.match(info.stdout, new RegExp(`substituters = ${url.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
    assert.match(info.stdout, /trusted-public-keys = nimbus-local-1:/);
    const read = await cacheToken("read");
    const third = await newStore();
    const realise = (netrc: string, key = publicKey) =>
      third.run("nix-store", ["--realise", built!.aOut, "--option", "substituters", url, "--option", "trusted-public-keys", key, "--option", "netrc-file", netrc, "--option", "narinfo-cache-negative-ttl", "0"]);

    const noToken = await realise(join(dir, "no-such-netrc"));
    assert.notEqual(noToken.code, 0, "without a token Nix cannot read the cache");
    const wrongKey = await realise(await netrcWith(read), "nimbus-local-1:LbQJGV7WTPsyg5uoWndRPGFS0wpckGTGhO1rvTGsfQw=");
    assert.notEqual(wrongKey.code, 0, "a path signed by another key is refused");

    const ok = await realise(await netrcWith(read));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), built!.aOut);
    assert.equal((await third.run("cat", [built!.aOut])).stdout, "a\n");

    const listed = await cli(["cache", "token", "list", "--json"]);
    const id = (JSON.parse(listed.stdout) as { tokens: Array<{ id: string; name: string }> }).tokens.find((t) => t.name === "test read")!.id;
    const revoked = await cli(["cache", "token", "revoke", id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const response = await fetch(`${url}/${built!.aOut.slice("/nix/store/".length, "/nix/store/".length + 32)}.narinfo`, { headers: { authorization: `Bearer ${read}` } });
    assert.equal(response.status, 401, "a revoked token reads nothing");
  });

  it("a write token pushes with nix copy --to and the service signs what it publishes; a read token cannot push", async () => {
    const { url } = CacheInfoView.parse(JSON.parse((await cli(["cache", "info", "--json"])).stdout));
    const write = await cacheToken("write");
    const read = await cacheToken("read");
    const file = join(dir, `pushed-${randomBytes(4).toString("hex")}`);
    await writeFile(file, `pushed by nix copy ${randomBytes(8).toString("hex")}\n`);
    const path = execFileSync("nix-store", ["--add", file], { encoding: "utf8" }).trim();
    const copy = (netrc: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn("nix", ["--extra-experimental-features", "nix-command", "copy", "--to", url, path, "--option", "netrc-file", netrc], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (code) => resolve({ code, stderr }));
      });
    const refused = await copy(await netrcWith(read));
    assert.notEqual(refused.code, 0, "a read token cannot push");
    assert.match(refused.stderr, /403/);
    const hash = path.slice("/nix/store/".length, "/nix/store/".length + 32);
    assert.equal((await fetch(`${url}/${hash}.narinfo`, { headers: { authorization: `Bearer ${write}` } })).status, 404, "nothing was published");

    const pushed = await copy(await netrcWith(write));
    assert.equal(pushed.code, 0, pushed.stderr);
    const narinfo = await (await fetch(`${url}/${hash}.narinfo`, { headers: { authorization: `Bearer ${read}` } })).text();
    assert.match(narinfo, new RegExp(`^StorePath: ${path}$`, "m"));
    assert.match(narinfo, /^Sig: nimbus-local-1:/m, "signed by the service's key");
    assert.equal(narinfo.match(/^Sig:/gm)?.length, 1, "and by it alone");
  });
});
