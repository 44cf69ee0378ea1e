import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { FakeService, GOOD_TOKEN } from "./fake-service.ts";
import { nixEval, NONCE, PRELUDE } from "./task-fixtures.ts";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const fixture = fileURLToPath(new URL("./fixtures/run-agent-command.ts", import.meta.url));

interface Child {
  exited: Promise<number | null>;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
}

/** Agents not yet exited: `after` kills them, so a failed test's agent cannot keep the file from ending. */
const running = new Set<Child>();

/** The agent command in its own process, as `nimbus agent --config` runs it. */
function runCommand(configPath: string): Child {
  const child = spawn(process.execPath, ["--import", "tsx", fixture, configPath], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const handle: Child = { exited, stderr: () => stderr, kill: (signal) => child.kill(signal) };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  return handle;
}

/**
 * How long a fresh agent process may take to say hello or to exit on a bad start: Node, tsx and
 * the agent's modules took over 10 s to load at load average 14 (a bound on liveness, not speed).
 */
const STARTUP_MS = 30_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref()),
  ]);
}

describe("runAgentCommand", () => {
  let dir: string;
  let service: FakeService;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-command-test-"));
    service = await FakeService.start({ heartbeatIntervalMs: 60_000 });
  });
  after(async () => {
    // An agent still running here outlived its test's SIGTERM (a failure already reported).
    for (const child of running) child.kill("SIGKILL");
    await Promise.all([...running].map((child) => child.exited));
    await service.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function writeConfig(name: string, token: string | undefined, extraToml = ""): Promise<string> {
    const configDir = path.join(dir, name);
    await mkdir(configDir, { recursive: true });
    if (token !== undefined) await writeFile(path.join(configDir, "token.key"), `${token}\n`);
    const configPath = path.join(configDir, "agent.toml");
    await writeFile(configPath, `apiBaseUrl = "${service.apiBaseUrl}"\nclusterJoinTokenPath = "token.key"\nmachineSubstituters = false\nbuiltinCache = false\n${extraToml}\n`);
    return configPath;
  }

  it("runs until SIGTERM, then sends pause and goodbye, closes the socket with 1000 and exits 0", async () => {
    const child = runCommand(await writeConfig("good", GOOD_TOKEN));
    const before = service.hellos.length;
    await service.until(() => service.hellos.length > before, `a hello (stderr: ${child.stderr()})`, STARTUP_MS);
    const index = service.connections.length - 1;
    const connection = service.connections[index]!;
    await service.until(() => service.types(index).includes("request-work"), "the welcome to be taken");
    child.kill("SIGTERM");
    const code = await withTimeout(child.exited, 5_000, "the agent to exit after SIGTERM");
    assert.equal(code, 0, child.stderr());
    assert.equal((await connection.closed).code, 1000);
    assert.deepEqual(service.types(index), ["hello", "request-work", "pause", "goodbye"]);
    assert.match(child.stderr(), /info received SIGTERM: shutting down \(finish\)/);
  });

  it("hands a running build back on a second SIGTERM during finish", async () => {
    const { drvPath } = await nixEval<{ drvPath: string }>(
      `let ${PRELUDE} in { inherit (mk "command-sleeper" "echo started; /bin/sleep 30; echo > $out") drvPath; }`,
      dir,
    );
    const child = runCommand(await writeConfig("switch", GOOD_TOKEN));
    const before = service.hellos.length;
    await service.until(() => service.hellos.length > before, `a hello (stderr: ${child.stderr()})`, STARTUP_MS);
    const index = service.connections.length - 1;
    await service.until(() => service.types(index).includes("request-work"), "the welcome to be taken");
    const taskId = `build-command-${NONCE}`;
    service.send({ type: "build", taskId, drvPath, system: "x86_64-linux", requiredFeatures: [] });
    await service.until(
      () => service.taskMessages(taskId).some((m) => m.type === "build-log" && m.lines.includes("started")),
      `the build to start (stderr: ${child.stderr()})`,
      10_000,
    );
    child.kill("SIGTERM");
    await service.until(() => service.types(index).includes("pause"), "pause");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!service.types(index).includes("goodbye"), "finish waits for the build");
    child.kill("SIGTERM");
    assert.equal(await withTimeout(child.exited, 5_000, "exit after the second SIGTERM"), 0, child.stderr());
    assert.deepEqual(service.types(index).filter((t) => t !== "build-log"), ["hello", "request-work", "pause", "goodbye"]);
    assert.equal(service.taskMessages(taskId).filter((m) => m.type === "build-result").length, 0);
    assert.match(child.stderr(), /info received SIGTERM again: handing back the running tasks/);
    assert.match(child.stderr(), /stopping 1 running task \(build-command-/);
  });

  it("stops the same way on SIGINT", async () => {
    const child = runCommand(await writeConfig("good-int", GOOD_TOKEN));
    const before = service.hellos.length;
    await service.until(() => service.hellos.length > before, `a hello (stderr: ${child.stderr()})`, STARTUP_MS);
    child.kill("SIGINT");
    assert.equal(await withTimeout(child.exited, 5_000, "exit after SIGINT"), 0, child.stderr());
  });

  it("exits 1 with the message alone when the token is refused", async () => {
    const child = runCommand(await writeConfig("refused", "revoked"));
    const code = await withTimeout(child.exited, STARTUP_MS, "the agent to give up");
    assert.equal(code, 1);
    assert.match(child.stderr(), /cluster join token refused \(HTTP 401\) — create a new one with `nimbus token create`/);
    assert.doesNotMatch(child.stderr(), /^\s+at /m, "no stack trace");
  });

  it("exits 1 with the message alone on a missing token file, a malformed session file or a missing config file", async () => {
    const configPath = await writeConfig("no-token", undefined);
    const noToken = runCommand(configPath);
    assert.equal(await withTimeout(noToken.exited, STARTUP_MS, "exit"), 1);
    assert.match(noToken.stderr(), /^nimbus agent: cluster join token file .* does not exist — create one with `nimbus token create > /m);
    assert.doesNotMatch(noToken.stderr(), /^\s+at /m);

    const sessionPath = path.join(path.dirname(configPath), "work", "session.json");
    await writeFile(path.join(path.dirname(configPath), "token.key"), GOOD_TOKEN);
    await mkdir(path.dirname(sessionPath), { recursive: true });
    await writeFile(sessionPath, "{}");
    const badSession = runCommand(configPath);
    assert.equal(await withTimeout(badSession.exited, STARTUP_MS, "exit"), 1);
    assert.ok(badSession.stderr().startsWith(`nimbus agent: the session file ${sessionPath} is not a Nimbus agent session`), badSession.stderr());
    assert.match(badSession.stderr(), /delete it and start the agent again/);

    const noConfig = runCommand(path.join(dir, "nowhere.toml"));
    assert.equal(await withTimeout(noConfig.exited, STARTUP_MS, "exit"), 1);
    assert.match(noConfig.stderr(), /nowhere\.toml: no such file/);
  });
});
