/**
 * CPU time over a window, by who spent it: the bench process's main thread (the local stack's
 * handlers, gateway and emulators other than dynalite), the whole process (with dynalite's
 * thread), the agent processes themselves, and the children they waited for (Nix). Read from
 * /proc on Linux; elsewhere only the bench process's own figures.
 */
import { readdirSync, readFileSync } from "node:fs";

/** CPU milliseconds, by who spent them. */
export interface CpuMs {
  mainThread: number;
  process: number;
  /** The agent processes (undefined off Linux). */
  agents?: number;
  /** Their children (nix-store and the builds): those that exited, and what those still running (the agents' long-lived Nix) spent; undefined off Linux. */
  agentChildren?: number;
}

/** Clock ticks per second of /proc/<pid>/stat: 100 on every Linux architecture Node runs on. */
const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat after the command name, or undefined when it cannot be read (gone, or not Linux). */
function statFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields that follow start after its last ')'.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** utime, stime, cutime and cstime of a process in ms, or undefined when it cannot be read (gone, or not Linux). */
export function procCpuMs(pid: number): { self: number; children: number } | undefined {
  const fields = statFields(pid);
  return fields && cpuOf(fields);
}

/** The CPU figures of a process's stat fields (after the command name), in ms. */
function cpuOf(fields: readonly string[]): { self: number; children: number } | undefined {
  // Fields 14–17 of the whole line are 11–14 of these (field 3, the state, is index 0).
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  if (![utime, stime, cutime, cstime].every((x) => Number.isFinite(x))) return undefined;
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  return { self: ms(utime! + stime!), children: ms(cutime! + cstime!) };
}

/** What the running children of `parents` spent so far, theirs and their own exited children's, in ms. */
function runningChildrenMs(parents: readonly number[]): number {
  const wanted = new Set(parents.map(String));
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    // Field 4, the parent's pid, is index 1 after the command name.
    if (!fields || !wanted.has(fields[1] ?? "")) continue;
    const cpu = cpuOf(fields);
    if (cpu) total += cpu.self + cpu.children;
  }
  return total;
}

function sample(agentPids: readonly number[]): CpuMs {
  const thread = process.threadCpuUsage();
  const whole = process.cpuUsage();
  const agents = agentPids.map(procCpuMs);
  const known = agents.every((a) => a !== undefined);
  return {
    mainThread: (thread.user + thread.system) / 1000,
    process: (whole.user + whole.system) / 1000,
    // A child that exits meanwhile moves from the running ones' sum to its parent's: counted once either way.
    ...(known && agents.length > 0
      ? { agents: agents.reduce((s, a) => s + a!.self, 0), agentChildren: agents.reduce((s, a) => s + a!.children, 0) + runningChildrenMs(agentPids) }
      : {}),
  };
}

/** Starts a window now; `stop()` gives the CPU spent since. */
export function startCpuMeter(agentPids: readonly number[]): { stop(): CpuMs } {
  const before = sample(agentPids);
  return {
    stop() {
      const after = sample(agentPids);
      const diff = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);
      const agents = diff(after.agents, before.agents);
      const agentChildren = diff(after.agentChildren, before.agentChildren);
      return {
        mainThread: after.mainThread - before.mainThread,
        process: after.process - before.process,
        ...(agents !== undefined ? { agents } : {}),
        ...(agentChildren !== undefined ? { agentChildren } : {}),
      };
    },
  };
}
