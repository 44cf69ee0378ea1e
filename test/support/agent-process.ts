import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const nimbusBin = join(repoRoot, "packages/cli/bin/nimbus.js");

/** Runs the `nimbus` CLI to completion with the same Node as the tests. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  /** Told the stderr written so far, each time more arrives (to act while the command runs). */
  onStderr?: (stderr: string) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [nimbusBin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr += d;
      onStderr?.(stderr);
    });
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  dir: string;
}

export interface AgentProcessOptions {
  /** More files in the agent's directory (e.g. binary-caches.json), written 0600. */
  files?: Record<string, string>;
  /** How to start the process: another machine's store runs it in its mount namespace (separate-store.ts). */
  spawn?: (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;
}

/** Starts `nimbus agent --config` in its own process with a fresh work directory. */
export async function startAgentProcess(
  apiBaseUrl: string,
  token: string,
  extraToml = "",
  env: Record<string, string> = {},
  options: AgentProcessOptions = {},
): Promise<AgentProcess> {
  const dir = await mkdtemp(join(tmpdir(), "nimbus-agent-"));
  await writeFile(join(dir, "token.key"), `${token}\n`, { mode: 0o600 });
  for (const [name, text] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), text, { mode: 0o600 });
  await writeFile(
    join(dir, "agent.toml"),
    [
      `apiBaseUrl = "${apiBaseUrl}"`,
      `clusterJoinTokenPath = "token.key"`,
      extraToml.includes("concurrentTasks") ? "" : `concurrentTasks = 3`,
      // `nimbus trigger` sends local repositories: only the local stack's agents may fetch those.
      `allowLocalRepositories = true`,
      // Offline: Nix reads only the configured caches, never cache.nixos.org.
      extraToml.includes("machineSubstituters") ? "" : "machineSubstituters = false",
      extraToml,
    ].join("\n"),
  );
  const child = (options.spawn ?? spawn)(process.execPath, [nimbusBin, "agent", "--config", join(dir, "agent.toml")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, output: () => output, exited, dir };
}

/** The processes below `pid` (children, their children…), read from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent; the command name (field 2) may hold spaces, so split after its ")".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const child of children.get(p) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

/**
 * The agent's machine dies: the agent and every process it started (Nix and its builders run
 * in process groups of their own, and would outlive a SIGKILL of the agent alone) are killed
 * at once. The agent is stopped first, so it starts nothing while its processes are listed.
 */
export async function killMachine(agent: AgentProcess): Promise<void> {
  const pid = agent.child.pid!;
  process.kill(pid, "SIGSTOP");
  for (const child of descendants(pid)) {
    try {
      process.kill(child, "SIGKILL");
    } catch {
      // ended meanwhile
    }
  }
  agent.child.kill("SIGKILL");
  await agent.exited;
}
