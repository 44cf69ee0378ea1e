/**
 * Shared by the task tests: git repositories made on the spot, Nix expressions that need no
 * nixpkgs, and an agent connected to a fake service. Every derivation embeds this run's nonce
 * so the shared /nix/store never makes one run depend on another.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { AgentMessage, LogBatch } from "@nimbus/protocol";
import { detectNix, loadAgentConfig, type NixInfo, type RunningAgent, type StartAgentOptions, type TaskFinished, startAgent } from "../src/index.ts";
import { FakeService, type FakeServiceOptions, GOOD_TOKEN, memoryLog } from "./fake-service.ts";
import { ManualClock } from "./manual-clock.ts";

const run = promisify(execFile);

export const NONCE = randomBytes(6).toString("hex");

/** `mk "name" "script"`: a derivation built by /bin/sh, unique to this test run. */
export const PRELUDE = `
  nonce = "${NONCE}";
  mk = name: script: derivation { name = "nimbus-test-\${name}"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
`;

/** PRELUDE for flakes, which are evaluated in pure mode: no `builtins.currentSystem` there. */
export const FLAKE_PRELUDE = PRELUDE.replace("builtins.currentSystem", '"x86_64-linux"');

/** A git repository holding `files`, committed; returns its path and the commit. */
export async function gitRepo(parent: string, files: Record<string, string>): Promise<{ dir: string; commit: string }> {
  const dir = await mkdtemp(path.join(parent, "repo-"));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  const git = (...args: string[]) => run("git", ["-C", dir, ...args]);
  await git("init", "--quiet");
  await git("add", ".");
  await git("-c", "user.name=Nimbus Test", "-c", "user.email=test@nimbus.invalid", "commit", "--quiet", "-m", "test");
  const { stdout } = await git("rev-parse", "HEAD");
  return { dir, commit: stdout.trim() };
}

/** Evaluates `expr` (with `--read-write-mode`, so drvPath writes the .drv) in `cwd`. */
export async function nixEval<T>(expr: string, cwd: string): Promise<T> {
  const { stdout } = await run(
    "nix-instantiate",
    ["--eval", "--strict", "--json", "--read-write-mode", "--option", "substituters", "", "-E", expr],
    { cwd, maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as T;
}

let nixInfo: NixInfo | undefined;

export interface TaskSetup {
  service: FakeService;
  agent: RunningAgent;
  workDirectory: string;
  lines: string[];
  finished: TaskFinished[];
  /** Resolves with the task's `task-finished` event. */
  finishedTask(taskId: string, timeoutMs?: number): Promise<TaskFinished>;
  /** The agent's messages about `taskId` of the given type. */
  of<T extends AgentMessage["type"]>(taskId: string, type: T): Extract<AgentMessage, { type: T }>[];
  /** A build's log batches as sent: its `build-log` frames', then the last one its result carries. */
  logBatches(taskId: string): LogBatch[];
  /** The lines of those batches. */
  logLines(taskId: string): string[];
  /** Hands back whatever still runs, then closes the service. */
  stop(): Promise<void>;
}

/** A fake service and an agent connected to it, with its own work directory under `parent`. */
export async function startTaskAgent(
  parent: string,
  extraToml = "",
  serviceOptions: FakeServiceOptions = {},
  agentOptions: StartAgentOptions = {},
): Promise<TaskSetup> {
  nixInfo ??= await detectNix({ nixSettings: { substituters: "" } });
  const service = await FakeService.start(serviceOptions);
  const base = await mkdtemp(path.join(parent, "agent-"));
  await writeFile(path.join(base, "token.key"), GOOD_TOKEN);
  await writeFile(
    path.join(base, "agent.toml"),
    // The test repositories are local: only agents of the local stack (and tests) may fetch those.
    [
      `apiBaseUrl = "${service.apiBaseUrl}"`,
      `clusterJoinTokenPath = "token.key"`,
      `workDirectory = "work"`,
      // Offline: Nix reads only the configured caches.
      extraToml.includes("machineSubstituters") ? "" : "machineSubstituters = false",
      // The fake service serves no built-in cache (test/builtin-cache.test.ts has the real one).
      extraToml.includes("builtinCache") ? "" : "builtinCache = false",
      ...(extraToml.includes("allowLocalRepositories") ? [] : ["allowLocalRepositories = true"]),
      extraToml,
    ].join("\n"),
  );
  const memory = memoryLog();
  const agent = await startAgent(await loadAgentConfig(path.join(base, "agent.toml")), {
    nix: nixInfo,
    log: memory.log,
    backoff: { initialMs: 20, maxMs: 100 },
    ...agentOptions,
  });
  const finished: TaskFinished[] = [];
  agent.events.on("task-finished", (event) => finished.push(event));
  await service.until(() => agent.connected(), "the agent to be welcomed");
  const logBatches = (taskId: string): LogBatch[] =>
    service.taskMessages(taskId).flatMap((m) => (m.type === "build-log" ? [m] : m.type === "build-result" && m.log ? [m.log] : []));
  return {
    service,
    agent,
    workDirectory: path.join(base, "work"),
    lines: memory.lines,
    finished,
    finishedTask: async (taskId, timeoutMs = 20_000) => {
      await service.until(() => finished.some((f) => f.taskId === taskId), `task ${taskId} to finish`, timeoutMs);
      return finished.find((f) => f.taskId === taskId)!;
    },
    of: (taskId, type) => service.taskMessages(taskId).filter((m) => m.type === type) as never,
    logBatches,
    logLines: (taskId) => logBatches(taskId).flatMap((batch) => batch.lines),
    stop: async () => {
      const stopping = agent.stop({ mode: "hand-back" });
      // On a manual clock, time moves on until the agent has left (a goodbye it cannot say times out).
      const clock = agentOptions.clock;
      if (clock instanceof ManualClock) {
        for (let done = false; !done; ) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          void stopping.then(() => (done = true));
          await new Promise((resolve) => setImmediate(resolve));
          if (!done) clock.advance(1_000);
        }
      }
      await stopping;
      await service.close();
    },
  };
}

/** Names left in a directory (to check that tasks clean up after themselves). */
export async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

export const tmpRoot = () => mkdtemp(path.join(os.tmpdir(), "nimbus-task-test-"));

/**
 * Stops the `nix-store --serve --write` processes the agents in this process build with
 * (src/nix-builders.ts): each holds what it built as a temporary GC root until it exits. The
 * agents start new ones for their next builds.
 */
export async function stopNixBuilders(): Promise<void> {
  const pids = (await promisify(execFile)("pgrep", ["-P", String(process.pid), "-f", "^nix-store --serve --write"]).catch(() => ({ stdout: "" }))).stdout
    .split("\n")
    .filter((line) => line !== "")
    .map(Number);
  for (const pid of pids) process.kill(pid, "SIGTERM");
  for (let i = 0; i < 200 && pids.some(alive); i++) await new Promise((resolve) => setTimeout(resolve, 25));
}

/** Whether a process is still there (a builder runs as a build user; the tests run as root). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
