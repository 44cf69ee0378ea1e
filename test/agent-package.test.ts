/**
 * What a build machine installs (docs/agent.md, "Installing on a build machine"): the package
 * `npm pack` makes of packages/cli. It must install with nothing else — no dynalite, fauxqs,
 * LevelDB, no tsx — and run the agent from its bundle.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { FakeService, GOOD_TOKEN } from "../packages/agent/test/fake-service.ts";
import { repoRoot } from "./support/agent-process.ts";

const run = promisify(execFile);

/** The environment without what the test runner adds for its own children. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  return env;
}

/** Every package directory under node_modules, scoped ones as `@scope/name`. */
async function installedPackages(nodeModules: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(nodeModules).catch(() => [])) {
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@")) {
      for (const scoped of await readdir(join(nodeModules, entry))) names.push(`${entry}/${scoped}`);
    } else {
      names.push(entry);
    }
  }
  return names.sort();
}

describe("the agent package for build machines", () => {
  let dir: string;
  let tarball: string;
  let nimbus: string;
  let machine: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "nimbus-agent-package-"));
    const packed = await run("npm", ["pack", "--workspace", "@nimbus/cli", "--pack-destination", dir], { cwd: repoRoot, env: cleanEnv() });
    tarball = join(dir, packed.stdout.trim().split("\n").at(-1)!);
    // A directory outside the checkout: nothing of the repository's node_modules is in reach.
    machine = join(dir, "build-machine");
    await mkdir(machine);
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], { cwd: machine, env: cleanEnv() });
    nimbus = join(machine, "node_modules", ".bin", "nimbus");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("holds the bundle and the launcher only, and depends on nothing", async () => {
    const { stdout } = await run("tar", ["-tzf", tarball]);
    assert.deepEqual(stdout.trim().split("\n").sort(), [
      "package/bin/nimbus.js",
      "package/dist/nimbus.js",
      "package/dist/nimbus.js.LEGAL.txt",
      "package/package.json",
    ]);
    const manifest = JSON.parse((await run("tar", ["-xzOf", tarball, "package/package.json"])).stdout);
    assert.equal(manifest.dependencies, undefined, "every runtime dependency is inlined in the bundle");
  });

  it("installs alone: no dynalite, fauxqs, LevelDB or tsx on the machine", async () => {
    const nodeModules = join(machine, "node_modules");
    assert.deepEqual(await installedPackages(nodeModules), ["@nimbus/cli"]);
    for (const absent of ["dynalite", "fauxqs", "level", "leveldown", "tsx", "esbuild", "ws", "zod"]) {
      assert.equal(existsSync(join(nodeModules, absent)), false, `${absent} is installed`);
    }
  });

  it("runs `nimbus agent --help` from the bundle", async () => {
    const { stdout } = await run(nimbus, ["agent", "--help"], { cwd: machine, env: cleanEnv() });
    assert.match(stdout, /^Usage: nimbus agent \[options\]/);
    assert.match(stdout, /--config <file>/);
  });

  it("says that `nimbus dev` needs a checkout of the repository", async () => {
    const result = await run(nimbus, ["dev"], { cwd: machine, env: cleanEnv() }).then(
      () => assert.fail("nimbus dev should fail in the packed package"),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^nimbus: `nimbus dev` runs the whole Nimbus stack and needs a checkout of the repository/);
  });

  it("connects an agent, takes work and leaves cleanly on SIGTERM", async () => {
    const service = await FakeService.start({ heartbeatIntervalMs: 60_000 });
    try {
      await writeFile(join(machine, "token.key"), `${GOOD_TOKEN}\n`, { mode: 0o600 });
      await writeFile(join(machine, "agent.toml"), `apiBaseUrl = "${service.apiBaseUrl}"\nclusterJoinTokenPath = "token.key"\n`);
      const child = spawn(nimbus, ["agent", "--config", "agent.toml"], { cwd: machine, env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (data) => (stderr += data));
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      await service.until(() => service.types(0).includes("request-work"), `the packed agent to be welcomed (stderr: ${stderr})`, 20_000);
      child.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
      assert.deepEqual(service.types(0), ["hello", "request-work", "pause", "goodbye"]);
      assert.equal((await service.connections[0]!.closed).code, 1000);
    } finally {
      await service.close();
    }
  });
});
