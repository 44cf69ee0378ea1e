/**
 * Ctrl-C on `npm start`: the terminal sends SIGINT to the whole foreground process group — the
 * CLI and every child it has (the TypeScript loader's esbuild, Nix). The stack must still stop
 * in order and say nothing alarming (docs/local.md). And a start that cannot go on says why in
 * one line, with what to do, not in a stack trace.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { localTableName } from "@nimbus/local";
import { tables } from "../packages/service/src/platform/resource-specs.ts";
import { ensureTables, startDynamo } from "../packages/local/src/dynamodb.ts";
import { nimbusBin, repoRoot, runCli } from "./support/agent-process.ts";

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * Starts `command` in a process group of its own, waits for `ready` in its output, sends SIGINT
 * to the whole group as a terminal does, and resolves once it has exited.
 */
function interruptWhen(command: string[], ready: RegExp, env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(command[0]!, command.slice(1), {
    cwd: repoRoot,
    // As in a fresh checkout: every TypeScript file goes through esbuild, none comes from tsx's cache.
    env: { ...process.env, TSX_DISABLE_CACHE: "1", ...env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let interrupted = false;
  const onData = (data: Buffer) => {
    output += data;
    if (!interrupted && ready.test(output)) {
      interrupted = true;
      process.kill(-child.pid!, "SIGINT");
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, "SIGKILL");
      reject(new Error(`no clean exit within 60 s (${interrupted ? "after SIGINT" : `never saw ${ready}`}):\n${output}`));
    }, 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** What a newcomer must not see on the way out. */
const ALARMING = /\b(error|errors|failed|cannot|exception|warn)\b|TransformError|no longer running/i;

function alarmingLines(output: string): string[] {
  return output.split("\n").filter((line) => ALARMING.test(line));
}

describe("Ctrl-C on nimbus dev", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "nimbus-dev-sigint-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("stops the stack without an agent: exit 0, no error line", async () => {
    const run = await interruptWhen(
      [process.execPath, nimbusBin, "dev", "--no-agent", "--port", "0", "--data-dir", join(dir, "no-agent")],
      /Press Ctrl-C to stop/,
    );
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /^stopped$/m, run.output);
    assert.deepEqual(alarmingLines(run.output), [], run.output);
    // The banner's sign-in link: the newcomer's way into the dashboard.
    assert.match(run.output, /^ {2}http:\/\/127\.0\.0\.1:\d+\/sign-in\?code=[\w-]{43}$/m, run.output);
  });

  it("stops the embedded agent first (goodbye), then the stack: exit 0, no error line", async () => {
    try {
      execFileSync("nix", ["--version"], { stdio: "ignore" });
    } catch {
      assert.fail("this test needs Nix on PATH for the embedded agent — install it (Debian: apt-get install -y nix-bin)");
    }
    const run = await interruptWhen(
      [process.execPath, nimbusBin, "dev", "--port", "0", "--data-dir", join(dir, "embedded")],
      /^info connected to /m,
    );
    assert.equal(run.code, 0, run.output);
    const order = ["stopping…", "info goodbye sent; closing the connection", "stopped"].map((line) => run.output.indexOf(`${line}\n`));
    assert.ok(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)), `goodbye before the stack stops:\n${run.output}`);
    assert.deepEqual(alarmingLines(run.output), [], run.output);
  });

  it("through npm start too: npm adds no error line", async () => {
    const run = await interruptWhen(["npm", "start", "--", "--no-agent"], /Press Ctrl-C to stop/, {
      NIMBUS_PORT: "0",
      NIMBUS_DATA_DIR: join(dir, "npm-start"),
    });
    assert.match(run.output, /^stopped$/m, run.output);
    assert.deepEqual(alarmingLines(run.output), [], run.output);
  });
});

describe("nimbus dev that cannot start", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "nimbus-dev-refused-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** What the user is told: the reason alone on stderr, exit 1, no stack trace. */
  const refused = (run: { code: number | null; stderr: string }, reason: RegExp) => {
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, reason);
    assert.doesNotMatch(run.stderr, /^\s+at /m, `a stack trace:\n${run.stderr}`);
  };

  it("on a data directory whose tables lack an index this checkout has: names it and says what to delete", async () => {
    const dataDir = join(dir, "older");
    // Tables as an older checkout made them: the Sessions table without its byClass index.
    const { byClass: _new, ...olderIndexes } = tables.Sessions.globalIndexes;
    const dynamo = await startDynamo({ dataDir, host: "127.0.0.1", port: 0 });
    try {
      await ensureTables(dynamo.endpoint, { ...tables, Sessions: { ...tables.Sessions, globalIndexes: olderIndexes } }, localTableName);
    } finally {
      await dynamo.stop();
    }
    const run = await runCli(["dev", "--no-agent", "--port", "0", "--data-dir", dataDir]);
    refused(run, /^nimbus: local table \S+-Sessions was created from an older schema \(index byClass is missing\).*delete the data directory's dynamodb\/ folder/m);
  });

  it("on a port in use: names it and the way to choose another", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = taken.address() as { port: number };
      const run = await runCli(["dev", "--no-agent", "--port", String(port), "--data-dir", join(dir, "port")]);
      refused(run, new RegExp(`^nimbus: 127\\.0\\.0\\.1:${port} is already in use; choose another port`, "m"));
    } finally {
      taken.close();
    }
  });
});
