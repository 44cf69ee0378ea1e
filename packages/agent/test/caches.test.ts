/**
 * The agent with binary caches (docs/agent.md, "Binary caches"), against real Nix, a file://
 * cache and the Cachix and Attic stand-ins (test/support): what hello tells the service (never
 * a secret), an evaluation that finds outputs in a cache with one bulk query per cache and
 * pushes the .drv closure of what must be built, builds that push their outputs, caches that
 * cannot be reached, a cache signed with a key the agent does not trust, and SIGHUP's reload.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { generateSecretKey, openCaches, parseBinaryCaches, pushClosure, storePathHash } from "@nimbus/cache";
import type { BuildResult } from "@nimbus/protocol";
import { startAtticStandin, type AtticStandin } from "../../../test/support/attic-standin.ts";
import { startCachixStandin, type CachixStandin } from "../../../test/support/cachix-standin.ts";
import { AgentConfigError, loadAgentConfig, startAgent } from "../src/index.ts";
import { gitRepo, nixEval, NONCE, PRELUDE, startTaskAgent, stopNixBuilders, type TaskSetup, tmpRoot } from "./task-fixtures.ts";

const run = promisify(execFile);

const fileKey = generateSecretKey("nimbus-files-1");
const cachixKey = generateSecretKey("mycache.cachix.org-1");
const atticKey = generateSecretKey("team-attic-1");
const strangerKey = generateSecretKey("stranger-1");
const downKey = generateSecretKey("down-1");

let dir: string;
let fileCache: string;
let cachix: CachixStandin;
let attic: AtticStandin;
let setup: TaskSetup;
let counter = 0;

const CACHES = () => ({
  files: { kind: "NixCache", storeURI: `file://${fileCache}`, publicKeys: [fileKey.publicKey.text], signingKeys: [fileKey.text] },
  mycache: { kind: "CachixCache", publicKeys: [cachixKey.publicKey.text], signingKeys: [cachixKey.text], authToken: "cachix-secret-token" },
  team: { kind: "AtticCache", endpoint: attic.url, cache: "team", token: "attic-secret-token", publicKeys: [atticKey.publicKey.text] },
});
const SECRETS = ["cachix-secret-token", "attic-secret-token", fileKey.text.split(":")[1]!, cachixKey.text.split(":")[1]!];

async function writeCaches(name: string, json: unknown, mode = 0o600): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(json), { mode });
  await chmod(file, mode);
  return file;
}

before(async () => {
  dir = await tmpRoot();
  fileCache = path.join(dir, "file-cache");
  cachix = await startCachixStandin({ mycache: { token: "cachix-secret-token", private: true } });
  attic = await startAtticStandin({ team: { signingKey: atticKey } }, { "attic-secret-token": { pull: ["team"], push: ["team"] } });
  // How tests point an agent at the Cachix stand-in instead of cachix.org.
  process.env["NIMBUS_CACHIX_API_URL"] = cachix.url;
  setup = await startTaskAgent(dir, `binaryCachesPath = "${await writeCaches("binary-caches.json", CACHES())}"`);
});
after(async () => {
  await setup.stop();
  await Promise.all([cachix.close(), attic.close()]);
  delete process.env["NIMBUS_CACHIX_API_URL"];
  await rm(dir, { recursive: true, force: true });
});

const inCachix = (storePath: string) => cachix.caches.get("mycache")!.narinfos.has(storePathHash(storePath));
const inAttic = (storePath: string) => attic.caches.get("team")!.narinfos.has(storePathHash(storePath));
const inFiles = async (storePath: string) => (await readdir(fileCache).catch((): string[] => [])).includes(`${storePathHash(storePath)}.narinfo`);

/**
 * Deletes a path from this store, as if another machine had built it. The agent's Nix that built
 * it holds it as a temporary root until it exits (src/nix-builders.ts): it is stopped first.
 */
const forget = async (storePath: string) => {
  await stopNixBuilders();
  await run("nix-store", ["--delete", storePath]);
};

describe("what the service learns", () => {
  it("hello names every cache, its kind, public keys and whether the agent pushes — never a token or signing key", async () => {
    const agent = setup.service.hellos.at(-1)!.agent;
    assert.deepEqual(agent.caches, [
      { name: "files", kind: "NixCache", publicKeys: [fileKey.publicKey.text], push: true, pull: true },
      { name: "mycache", kind: "CachixCache", publicKeys: [cachixKey.publicKey.text], push: true, pull: true },
      { name: "team", kind: "AtticCache", publicKeys: [atticKey.publicKey.text], push: true, pull: true },
    ]);
    assert.deepEqual(agent.pushCaches, ["files", "mycache", "team"]);
    assert.deepEqual(agent.substituters, [`file://${fileCache}`, cachix.cacheUrl("mycache"), `${attic.url}/team`]);
    assert.match(agent.storeId ?? "", /^[^/]+\/[0-9a-f]{12}$/);
    const everything = setup.service.connections.flatMap((c) => c.frames).join("\n");
    for (const secret of SECRETS) assert.ok(!everything.includes(secret), "no secret on the wire");
  });

  it("the tokens go to a netrc in the agent's private directory, readable by the agent alone", async () => {
    const privateDir = path.join(setup.workDirectory, "private");
    assert.equal((await stat(privateDir)).mode & 0o777, 0o700);
    const netrc = path.join(privateDir, "netrc");
    assert.equal((await stat(netrc)).mode & 0o777, 0o600);
    const text = await readFile(netrc, "utf8");
    assert.match(text, /machine 127\.0\.0\.1 login authtoken password cachix-secret-token/);
    assert.deepEqual(await readdir(privateDir), ["netrc"], "no signing key left behind");
  });
});

describe("a hostile build", () => {
  it("cannot read the caches' tokens: the builder runs as another user, the netrc is the agent's alone", async () => {
    const netrc = path.join(setup.workDirectory, "private", "netrc");
    const { spy } = await nixEval<{ spy: { drvPath: string; out: string } }>(
      // The builder has no coreutils: the shell reads the file itself.
      `let ${PRELUDE} d = mk "spy-netrc" "(while read -r l; do echo \\"$l\\"; done < ${netrc}) > $out 2>&1 || echo refused >> $out"; in { spy = { inherit (d) drvPath; out = d.outPath; }; }`,
      dir,
    );
    const taskId = `build-spy-${NONCE}-${++counter}`;
    setup.service.send({ type: "build", taskId, drvPath: spy.drvPath, system: "x86_64-linux", requiredFeatures: [] });
    assert.equal((await setup.finishedTask(taskId, 60_000)).status, "succeeded");
    const stolen = await readFile(spy.out, "utf8");
    assert.match(stolen, /Permission denied/);
    for (const secret of SECRETS) assert.ok(!stolen.includes(secret), "the builder saw no token");
    const pushed = [...cachix.caches.get("mycache")!.narinfos.keys()];
    assert.ok(pushed.includes(storePathHash(spy.out)), "its output was pushed like any other — without a secret in it");
  });
});

describe("an evaluation with caches", () => {
  let drvs: Record<string, { drvPath: string; out: string }>;

  it("finds outputs already in a cache with one bulk query per cache, and pushes the .drv closure of what must be built", async () => {
    const ciNix = `let ${PRELUDE} a = mk "cached-a" "echo a > $out"; in { inherit a; b = mk "cached-b" "echo \${a} > $out"; c = mk "cached-c" "echo c > $out"; }`;
    const repo = await gitRepo(dir, { "ci.nix": ciNix });
    drvs = await nixEval(`let s = import ./ci.nix; d = x: { inherit (x) drvPath; out = x.outPath; }; in { a = d s.a; b = d s.b; c = d s.c; }`, repo.dir);
    // c was built on another machine and pushed to the file cache: here it is missing.
    await run("nix-store", ["--realise", drvs.c!.drvPath, "--option", "substituters", ""]);
    const [files] = openCaches(parseBinaryCaches(JSON.stringify({ files: CACHES().files })).caches);
    assert.equal((await pushClosure(files!, [drvs.c!.out], { what: "outputs" })).status, "pushed");
    await forget(drvs.c!.out);
    cachix.counts.clear();
    attic.counts.clear();

    const id = `eval-caches-${NONCE}-${++counter}`;
    setup.service.send({ type: "evaluate", taskId: id, jobId: "job-c", repository: "test/caches", cloneUrl: repo.dir, commit: repo.commit });
    const finished = await setup.finishedTask(id, 60_000);
    assert.equal(finished.status, "succeeded", finished.error);
    const { events, done } = setup.service.evaluation(id);

    const built = events.flatMap((e) => (e.kind === "derivation" ? [e.drvPath] : []));
    assert.deepEqual(built, [drvs.a!.drvPath, drvs.b!.drvPath], "c's output is in a cache: not built");
    const needsBuild = Object.fromEntries(events.flatMap((e) => (e.kind === "attribute" ? [[e.path[0], e.needsBuild]] : [])));
    assert.deepEqual(needsBuild, { a: true, b: true, c: false });
    const self = `store:${setup.agent.info.storeId}`;
    for (const event of events) {
      if (event.kind !== "derivation") continue;
      assert.deepEqual(event.sources, [["cache:files", "cache:mycache", "cache:team", self]], "the .drv is in every push cache and here");
    }
    assert.deepEqual(
      done?.caches?.map((r) => [r.cache, r.status]),
      [["files", "pushed"], ["mycache", "pushed"], ["team", "pushed"]],
    );
    for (const drv of [drvs.a!.drvPath, drvs.b!.drvPath]) {
      assert.ok(inCachix(drv) && inAttic(drv) && (await inFiles(drv)), `${drv} pushed to every cache`);
    }
    // Asked in bulk: Cachix's and Attic's missing-paths endpoints, never one narinfo at a time.
    assert.ok((cachix.counts.get("bulk") ?? 0) >= 1 && (attic.counts.get("missing") ?? 0) >= 1);
    assert.equal(cachix.counts.get("read") ?? 0, 0, "no narinfo read from Cachix");
    assert.equal(attic.counts.get("read") ?? 0, 0, "no narinfo read from Attic");
  });

  it("a build pushes its output closure to every push cache and says so per cache", async () => {
    const taskId = `build-caches-${NONCE}-${++counter}`;
    const reads = () => (cachix.counts.get("read") ?? 0) + (attic.counts.get("read") ?? 0);
    const readsBefore = reads();
    setup.service.send({ type: "build", taskId, drvPath: drvs.a!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
    await setup.finishedTask(taskId, 60_000);
    const result = setup.of(taskId, "build-result")[0]! as BuildResult;
    assert.equal(result.status, "succeeded", result.error);
    // The service sends a build only when no cache holds its outputs, and its .drv is here: Nix asks no cache first.
    assert.equal(reads(), readsBefore, "no narinfo asked of Cachix or Attic before building");
    assert.deepEqual(result.caches, [
      { cache: "files", status: "pushed", paths: 1, alreadyPresent: 0 },
      { cache: "mycache", status: "pushed", paths: 1, alreadyPresent: 0 },
      { cache: "team", status: "pushed", paths: 1, alreadyPresent: 0 },
    ]);
    assert.ok(inCachix(drvs.a!.out) && inAttic(drvs.a!.out) && (await inFiles(drvs.a!.out)));
    const log = setup.logLines(taskId);
    assert.ok(log.includes("nimbus: pushed 1 path to mycache (0 already there)"), log.join("\n"));
  });

  /** The build task succeeded, with `a` copied from a cache and never built here. */
  async function builtWithAFetched(taskId: string) {
    await setup.finishedTask(taskId, 60_000);
    const result = setup.of(taskId, "build-result")[0]! as BuildResult;
    assert.equal(result.status, "succeeded", result.error);
    const log = setup.logLines(taskId);
    assert.ok(log.some((l) => l.startsWith(`copying path '${drvs.a!.out}' from `)), log.join("\n"));
    assert.ok(!log.some((l) => l.includes(`building '${drvs.a!.drvPath}'`)), "a was fetched, not built");
  }

  it("fetches a build's inputs from a cache before building (the output Nimbus built elsewhere)", async () => {
    await forget(drvs.a!.out);
    const taskId = `build-caches-${NONCE}-${++counter}`;
    setup.service.send({ type: "build", taskId, drvPath: drvs.b!.drvPath, system: "x86_64-linux", requiredFeatures: [], inputs: [drvs.a!.out], inputCaches: ["files"] });
    await builtWithAFetched(taskId);
  });

  it("an input the task does not list and this store lacks is still fetched by Nix while building, not built here", async () => {
    await forget(drvs.b!.out);
    await forget(drvs.a!.out);
    const taskId = `build-caches-${NONCE}-${++counter}`;
    // No `inputs` (a task lists as many as fit in a frame, and only what Nimbus built): Nix must substitute a itself.
    setup.service.send({ type: "build", taskId, drvPath: drvs.b!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
    await builtWithAFetched(taskId);
  });
});

describe("caches that fail", () => {
  let other: TaskSetup;
  let drvs: Record<string, { drvPath: string; out: string }>;
  let cachesFile: string;

  before(async () => {
    // A cache that is down, and a file cache signed with a key this agent does not trust. Down is port 2: nothing
    // listens there, no test's server is given a port below the ephemeral range (a closed server's port may be given
    // to a test running beside), and fetch does not refuse it as it does port 1.
    cachesFile = await writeCaches("failing-caches.json", {
      down: { kind: "NixCache", storeURI: "http://127.0.0.1:2", publicKeys: [downKey.publicKey.text], signingKeys: [downKey.text] },
      foreign: { kind: "NixCache", storeURI: `file://${path.join(dir, "foreign")}`, publicKeys: [strangerKey.publicKey.text] },
    });
    other = await startTaskAgent(dir, `binaryCachesPath = "${cachesFile}"`);
    drvs = await nixEval(
      `let ${PRELUDE} x = mk "foreign-x" "echo x > $out"; in { x = { inherit (x) drvPath; out = x.outPath; }; y = let y = mk "foreign-y" "echo \${x} > $out"; in { inherit (y) drvPath; out = y.outPath; }; }`,
      dir,
    );
    // x is in the "foreign" cache, signed by the file key, which this agent's config does not list.
    await run("nix-store", ["--realise", drvs.x!.drvPath, "--option", "substituters", ""]);
    const [foreign] = openCaches(
      parseBinaryCaches(JSON.stringify({ foreign: { kind: "NixCache", storeURI: `file://${path.join(dir, "foreign")}`, publicKeys: [fileKey.publicKey.text], signingKeys: [fileKey.text] } })).caches,
    );
    assert.equal((await pushClosure(foreign!, [drvs.x!.out], { what: "outputs" })).status, "pushed");
    await forget(drvs.x!.out);
  });
  after(() => other.stop());

  it("an unreachable cache is reported by the evaluation, which goes on without it", async () => {
    const repo = await gitRepo(dir, { "ci.nix": `let ${PRELUDE} in { d = mk "unreachable-d" "echo d > $out"; }` });
    const id = `eval-down-${NONCE}-${++counter}`;
    other.service.send({ type: "evaluate", taskId: id, jobId: "job-d", repository: "test/down", cloneUrl: repo.dir, commit: repo.commit });
    const finished = await other.finishedTask(id, 60_000);
    assert.equal(finished.status, "succeeded", finished.error);
    const { events, done } = other.service.evaluation(id);
    const down = (done?.caches ?? []).filter((r) => r.cache === "down");
    assert.deepEqual(down.map((r) => r.status), ["unreachable", "failed"], "it could not be asked, nor pushed to");
    for (const report of down) assert.match(report.status === "pushed" ? "" : report.reason, /connection refused/);
    const derivation = events.find((e) => e.kind === "derivation");
    assert.deepEqual(derivation?.kind === "derivation" && derivation.sources, [[`store:${other.agent.info.storeId}`]], "the .drv is only here: the push failed");
    assert.ok(other.lines.some((l) => /warn .*down.*(could not be asked|push to down failed)/.test(l)), "the agent says so");
  });

  it("an input signed with a key the agent does not trust is not fetched: the build is exceptional, with Nix's reason", async () => {
    const taskId = `build-foreign-${NONCE}-${++counter}`;
    other.service.send({ type: "build", taskId, drvPath: drvs.y!.drvPath, system: "x86_64-linux", requiredFeatures: [], inputs: [drvs.x!.out], inputCaches: ["foreign"] });
    const finished = await other.finishedTask(taskId, 60_000);
    const result = other.of(taskId, "build-result")[0]! as BuildResult;
    assert.equal(finished.status, "exceptional");
    assert.match(result.error ?? "", /^could not fetch its inputs from the caches: /);
    assert.match(result.error ?? "", /signature|signed/);
    await assert.rejects(run("nix-store", ["--query", "--hash", drvs.x!.out]), "nothing was substituted");
  });

  it("SIGHUP's reload takes the corrected file: the agent tells the service, and the next build fetches the input", async () => {
    await writeCaches("failing-caches.json", {
      foreign: { kind: "NixCache", storeURI: `file://${path.join(dir, "foreign")}`, publicKeys: [fileKey.publicKey.text] },
    });
    const before = other.service.connections.flatMap((c) => c.received).length;
    assert.equal(await other.agent.reload(), true);
    await other.service.until(
      () => other.service.connections.flatMap((c) => c.received).slice(before).some((m) => (m as { type?: string }).type === "agent-info"),
      "agent-info",
    );
    assert.deepEqual(other.agent.info.caches?.map((c) => c.name), ["foreign"]);
    assert.deepEqual(other.agent.info.pushCaches, [], "read-only: no signing key");
    const taskId = `build-foreign-${NONCE}-${++counter}`;
    other.service.send({ type: "build", taskId, drvPath: drvs.y!.drvPath, system: "x86_64-linux", requiredFeatures: [], inputs: [drvs.x!.out], inputCaches: ["foreign"] });
    assert.equal((await other.finishedTask(taskId, 60_000)).status, "succeeded");
    const log = other.logLines(taskId);
    assert.ok(log.some((l) => l.startsWith(`copying path '${drvs.x!.out}' from 'file://`)), log.join("\n"));
  });

  it("a reload of a broken file changes nothing and says why", async () => {
    await writeCaches("failing-caches.json", { foreign: { kind: "NixCache", storeURI: "s3://bucket", publicKeys: [fileKey.publicKey.text] } });
    assert.equal(await other.agent.reload(), false);
    assert.deepEqual(other.agent.info.caches?.map((c) => c.name), ["foreign"], "the caches loaded before stay");
    assert.ok(other.lines.some((l) => /error binary caches not reloaded.*cache "foreign": "storeURI" this Nix \(2\.8[^)]*\) cannot open s3:\/\/ stores/.test(l)), other.lines.join("\n"));
  });
});

describe("a binary-caches.json that cannot be used", () => {
  const cases: Array<[string, unknown, number, RegExp]> = [
    ["a store URI this Nix cannot open", { web: { kind: "NixCache", storeURI: "s3://bucket", publicKeys: [fileKey.publicKey.text] } }, 0o600, /cache "web": "storeURI" this Nix \(2\.8[^)]*\) cannot open s3:\/\/ stores/],
    ["a signing key that readers would refuse", { web: { kind: "NixCache", storeURI: "https://cache.example.com", publicKeys: [strangerKey.publicKey.text], signingKeys: [fileKey.text] } }, 0o600, /cache "web": "signingKeys\[0\]" does not match any of "publicKeys"/],
    ["tokens readable by builders", { team: { kind: "AtticCache", endpoint: "https://attic.example.com", cache: "team", token: "t", publicKeys: [atticKey.publicKey.text] } }, 0o644, /readable by other users \(mode 0644\).*chmod 600/],
  ];
  for (const [name, json, mode, pattern] of cases) {
    it(`stops the agent at start: ${name}`, async () => {
      const file = await writeCaches(`bad-${++counter}.json`, json, mode);
      const base = path.join(dir, `bad-agent-${counter}`);
      await run("mkdir", ["-p", base]);
      await writeFile(path.join(base, "token.key"), "nimbus_test_token_1234");
      await writeFile(path.join(base, "agent.toml"), `apiBaseUrl = "http://127.0.0.1:9"\nclusterJoinTokenPath = "token.key"\nmachineSubstituters = false\nbinaryCachesPath = "${file}"\n`);
      const config = await loadAgentConfig(path.join(base, "agent.toml"));
      await assert.rejects(startAgent(config, { log: () => {} }), (err: Error) => {
        assert.ok(err instanceof AgentConfigError, err.message);
        assert.match(err.message, pattern);
        return true;
      });
    });
  }
});
