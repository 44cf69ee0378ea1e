/**
 * Child processes for tasks (git, nix-instantiate, nix-store): output collected or streamed
 * line by line, killed with SIGTERM when the task's signal aborts (SIGKILL a few seconds later),
 * with their whole process group when asked.
 */
import { spawn } from "node:child_process";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called with every complete line of stdout and stderr (without the newline), in arrival order. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Skip collecting stdout (it is streamed through `onLine` instead). */
  discardStdout?: boolean;
  /** After an abort's SIGTERM, SIGKILL if the process is still there this much later (default 5 s). */
  killAfterMs?: number;
  /** Written to the process's stdin (which is closed otherwise). */
  stdin?: string;
  /** Start it in a process group of its own and signal the whole group when stopping it. */
  processGroup?: boolean;
  /** More stdout than this stops the process; `RunResult.stopped` says why. */
  maxStdoutBytes?: number;
  /** Sees each stdout chunk; a returned reason stops the process (`RunResult.stopped`). */
  inspectStdout?: (chunk: Buffer) => string | undefined;
}

export interface RunResult {
  /** Exit status; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Why the process was stopped by one of its limits (`maxStdoutBytes`, `inspectStdout`). */
  stopped?: string;
}

/** The process could not be started at all (ENOENT, EACCES…), or was aborted. */
export class ProcessStartError extends Error {
  override readonly name = "ProcessStartError";
}

/** Longest line kept whole; a builder printing megabytes without a newline must not exhaust memory. */
const MAX_PENDING_LINE_BYTES = 64 * 1024;
/** stderr is only for error messages: keep its end. */
const MAX_STDERR_BYTES = 1024 * 1024;

export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new ProcessStartError(`${command} not started: the task was cancelled`));
      return;
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: options.processGroup === true,
    });
    if (options.stdin !== undefined && child.stdin) {
      // A process that exits without reading all of it must not crash the agent with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(options.stdin);
    }
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stopped: string | undefined;
    let stderr = "";
    const splitters = {
      stdout: lineSplitter((line) => options.onLine?.(line, "stdout")),
      stderr: lineSplitter((line) => options.onLine?.(line, "stderr")),
    };
    // The group's id is the child's pid; a plain child is signalled alone.
    const signalChild = (signal: NodeJS.Signals) => {
      try {
        if (options.processGroup && child.pid !== undefined) process.kill(-child.pid, signal);
        else child.kill(signal);
      } catch {
        // Already gone.
      }
    };
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (killTimer !== undefined) return;
      signalChild("SIGTERM");
      killTimer = setTimeout(() => signalChild("SIGKILL"), options.killAfterMs ?? 5_000);
      killTimer.unref();
    };
    child.stdout!.on("data", (chunk: Buffer) => {
      if (stopped !== undefined) return;
      stdoutBytes += chunk.length;
      const reason =
        options.maxStdoutBytes !== undefined && stdoutBytes > options.maxStdoutBytes
          ? `it printed more than ${options.maxStdoutBytes} bytes`
          : options.inspectStdout?.(chunk);
      if (reason !== undefined) {
        stopped = reason;
        stdout.length = 0;
        stop();
        return;
      }
      if (!options.discardStdout) stdout.push(chunk);
      if (options.onLine) splitters.stdout.push(chunk);
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
      if (stderr.length > MAX_STDERR_BYTES) stderr = stderr.slice(-MAX_STDERR_BYTES);
      if (options.onLine) splitters.stderr.push(chunk);
    });
    // SIGTERM lets nix-store kill its builder (it runs as a build user, in its own session);
    // SIGKILL only if it does not go.
    const onAbort = () => stop();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let failed: Error | undefined;
    child.on("error", (err: NodeJS.ErrnoException) => {
      failed = new ProcessStartError(`cannot run ${command}: ${err.code ?? err.message}`);
    });
    child.on("close", (code, signal) => {
      options.signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      // What the stopped leader left behind in its group goes too.
      if (killTimer !== undefined && options.processGroup) signalChild("SIGKILL");
      if (failed) {
        reject(failed);
        return;
      }
      splitters.stdout.end();
      splitters.stderr.end();
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString("utf8"), stderr, ...(stopped === undefined ? {} : { stopped }) });
    });
  });
}

/** Bytes in, complete UTF-8 lines out; a trailing `\r` (progress output) is dropped. */
export function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = (last: Buffer) => {
    const bytes = pendingBytes === 0 ? last : Buffer.concat([...pending, last]);
    pending = [];
    pendingBytes = 0;
    emit(bytes.toString("utf8").replace(/\r$/, ""));
  };
  return {
    push(chunk) {
      let start = 0;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, start)) {
        flush(chunk.subarray(start, i));
        start = i + 1;
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > MAX_PENDING_LINE_BYTES) flush(Buffer.alloc(0));
      }
    },
    end() {
      if (pendingBytes > 0) flush(Buffer.alloc(0));
    },
  };
}

/**
 * Splits arguments into groups whose total size stays well below ARG_MAX (2 MB on Linux for
 * arguments, their pointers and the environment together), so 100,000 store paths become a
 * handful of invocations.
 */
export function chunkArguments(items: readonly string[], maxBytes = 256 * 1024, maxCount = 4096): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const item of items) {
    // The string, its NUL and its argv pointer.
    const size = Buffer.byteLength(item) + 1 + 8;
    if (current.length > 0 && (bytes + size > maxBytes || current.length >= maxCount)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Runs `fn` over `items` with at most `limit` at a time, results in input order. */
export async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
