/**
 * Builds through long-lived `nix-store --serve --write` processes — the protocol Nix speaks to
 * `ssh://` stores, and how Hydra drives its builders — instead of a `nix-store --realise` each:
 * a trivial build then costs Nix half the CPU or less (no process to start, link and open the
 * store for), and the agent no fork (docs/agent.md, "Build"). One build at a time per process,
 * so its stderr is that build's log. A process is reused by builds with the same options, and
 * retired after a while: everything a Nix process built stays a temporary GC root until it
 * exits. Only for a derivation whose inputs are all in the store: the serve protocol never
 * substitutes. When `nix-store --serve` cannot be started, the caller runs `nix-store --realise`.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { serveConnection, type ServeIncoming, serveInt, serveString } from "@nimbus/cache";
import type { Logger } from "./log.ts";
import type { BuildLimits } from "./nix-info.ts";
import { lineSplitter } from "./process.ts";
import { printableLines } from "./terminal-text.ts";

/** Protocol 2.3 and later take the build limits (max-silent-time, timeout, max-build-log-size, repeats). */
const CLIENT_VERSION = 0x204;
const CMD_BUILD_PATHS = 6;
/** When processes retire: after this many builds, or this long idle (their temporary GC roots go with them). */
export interface Retirement {
  buildsPerProcess: number;
  idleMs: number;
}

const RETIREMENT: Retirement = { buildsPerProcess: 100, idleMs: 30_000 };
/** After a process could not be started or greeted, builds use `nix-store --realise` this long. */
const UNAVAILABLE_MS = 10 * 60_000;
/** The end of a build's stderr kept for classifying its failure. */
const MAX_STDERR_CHARS = 1024 * 1024;

/** How a build through a serve process ended, as `nix-store --realise`'s exit would say it (process.ts `RunResult`). */
export interface ServeBuildRun {
  /** 0 built; Nix's exit status for the failure (1, or 100–111 when builds failed); null when the process was stopped or died. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Nix's messages during the build, then its answer's error. */
  stderr: string;
}

export interface ServeBuildOptions {
  /** `--option` pairs the process runs with: a build goes to a process started with the same ones. */
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Every line of the build's log: the builder's output, then Nix's error if it failed. */
  onLine: (line: string) => void;
}

class ServeBuilder {
  readonly incoming: ServeIncoming;
  readonly ready: Promise<number>;
  readonly closed: Promise<NodeJS.Signals | null>;
  builds = 0;
  /** The process is gone (stopped here, or killed by someone else). */
  exited = false;
  idleTimer: NodeJS.Timeout | undefined;
  private sink: ((line: string) => void) | undefined;
  private stderr = "";
  private readonly lines = lineSplitter((line) => this.sink?.(line));
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly key: string,
    readonly directory: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    ({ incoming: this.incoming, ready: this.ready } = serveConnection(child, CLIENT_VERSION));
    this.closed = new Promise((resolve) => child.on("close", (_code, signal) => resolve(signal)));
    void this.closed.then(() => (this.exited = true));
    child.stderr.on("data", (chunk: Buffer) => {
      if (this.sink === undefined) return;
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-MAX_STDERR_CHARS);
      this.lines.push(chunk);
    });
  }

  async build(drvPath: string, limits: BuildLimits, options: ServeBuildOptions): Promise<ServeBuildRun> {
    this.builds++;
    this.sink = options.onLine;
    this.stderr = "";
    const onAbort = () => this.stop();
    options.signal.addEventListener("abort", onAbort, { once: true });
    try {
      this.child.stdin.write(
        Buffer.concat([
          serveInt(CMD_BUILD_PATHS),
          serveInt(1),
          serveString(drvPath),
          serveInt(limits.maxSilentTime),
          serveInt(limits.buildTimeout),
          serveInt(limits.maxLogSize),
          serveInt(0), // repeats
          serveInt(0), // enforce determinism
        ]),
      );
      const status = await this.incoming.int();
      const error = status === 0 ? "" : printableLines(await this.incoming.string());
      // Nix wrote the log before its answer; lines read in the same turn of the loop are handled by now.
      await new Promise((resolve) => setImmediate(resolve));
      this.lines.end();
      for (const line of error.split("\n")) if (line !== "") options.onLine(line);
      return { code: status, signal: null, stderr: `${this.stderr}${error}` };
    } catch {
      // Stopped (the task's signal) or gone: as a killed `nix-store --realise` would be.
      this.stop();
      const signal = await this.closed;
      this.lines.end();
      return { code: null, signal, stderr: this.stderr };
    } finally {
      options.signal.removeEventListener("abort", onAbort);
      this.sink = undefined;
    }
  }

  /** SIGTERM lets nix-store kill its builder (it runs as a build user, in its own session); SIGKILL only if it does not go. */
  stop(): void {
    if (this.killTimer !== undefined) return;
    clearTimeout(this.idleTimer);
    this.child.stdin.destroy();
    this.child.kill("SIGTERM");
    this.killTimer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    this.killTimer.unref();
    void this.closed.then(() => {
      clearTimeout(this.killTimer);
      return rm(this.directory, { recursive: true, force: true });
    });
  }

  get stopped(): boolean {
    return this.killTimer !== undefined || this.exited;
  }
}

/** The agent's serve processes: idle ones kept for the next build with the same options. */
export class NixBuilders {
  private readonly idle: ServeBuilder[] = [];
  private readonly busy = new Set<ServeBuilder>();
  private started = 0;
  private unavailableUntil = 0;
  private closed = false;

  constructor(
    /** Each process's TMPDIR (its builds' directories) is a directory of its own under this one. */
    private readonly directory: string,
    private readonly limits: BuildLimits,
    private readonly log?: Logger,
    private readonly retirement: Retirement = RETIREMENT,
  ) {}

  /**
   * Removes the directories of processes whose agent is gone (killed before it could): each is
   * named for its agent's pid, and another agent may share the work directory.
   */
  async removeLeftovers(): Promise<void> {
    const entries = await readdir(this.directory).catch((): string[] => []);
    for (const entry of entries) {
      const pid = Number(/^serve-(\d+)-\d+$/.exec(entry)?.[1]);
      if (Number.isSafeInteger(pid) && pid !== process.pid && !running(pid)) await rm(path.join(this.directory, entry), { recursive: true, force: true });
    }
  }

  /** Builds `drvPath`; undefined when no serve process could be had (the caller runs `nix-store --realise`). */
  async build(drvPath: string, options: ServeBuildOptions): Promise<ServeBuildRun | undefined> {
    if (this.closed || Date.now() < this.unavailableUntil) return undefined;
    if (options.signal.aborted) return { code: null, signal: null, stderr: "" };
    const builder = await this.take(options);
    if (!builder) return undefined;
    this.busy.add(builder);
    try {
      return await builder.build(drvPath, this.limits, options);
    } finally {
      this.busy.delete(builder);
      this.release(builder);
    }
  }

  /** Stops every process; later builds run `nix-store --realise`. */
  close(): void {
    this.closed = true;
    for (const builder of [...this.idle.splice(0), ...this.busy]) builder.stop();
  }

  private async take(options: ServeBuildOptions): Promise<ServeBuilder | undefined> {
    const key = options.args.join("\u0000");
    // Those started with other options (a reload), and those that exited while idle (killed by someone else), go.
    for (const unfit of this.idle.filter((b) => b.key !== key || b.stopped)) this.drop(unfit);
    const reused = this.idle.pop();
    if (reused) {
      clearTimeout(reused.idleTimer);
      return reused;
    }
    const directory = path.join(this.directory, `serve-${process.pid}-${++this.started}`);
    let builder: ServeBuilder | undefined;
    try {
      await mkdir(directory, { recursive: true });
      const child = spawn("nix-store", ["--serve", "--write", ...options.args], { env: { ...options.env, TMPDIR: directory }, stdio: ["pipe", "pipe", "pipe"] });
      builder = new ServeBuilder(key, directory, child);
      await builder.ready;
      return builder;
    } catch (err) {
      builder?.stop();
      this.unavailableUntil = Date.now() + UNAVAILABLE_MS;
      this.log?.("warn", `nix-store --serve --write could not be started (${err instanceof Error ? err.message : String(err)}): builds run nix-store --realise for ${UNAVAILABLE_MS / 60_000} minutes`);
      return undefined;
    }
  }

  private release(builder: ServeBuilder): void {
    if (builder.stopped || this.closed || builder.builds >= this.retirement.buildsPerProcess) {
      builder.stop();
      return;
    }
    builder.idleTimer = setTimeout(() => this.drop(builder), this.retirement.idleMs);
    builder.idleTimer.unref();
    this.idle.push(builder);
  }

  private drop(builder: ServeBuilder): void {
    const at = this.idle.indexOf(builder);
    if (at !== -1) this.idle.splice(at, 1);
    builder.stop();
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
