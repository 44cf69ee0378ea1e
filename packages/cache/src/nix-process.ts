/** Runs Nix's commands for the cache library: output collected, Nix's `error:` text kept for messages. */
import { spawn } from "node:child_process";

export class NixCommandError extends Error {
  override readonly name = "NixCommandError";
}

export interface NixRunOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export function runNix(command: string, args: readonly string[], options: NixRunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"], signal: options.signal });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-256 * 1024);
    });
    child.on("error", (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "ENOENT"
          ? new NixCommandError(`${command} not found — install Nix (Debian: apt-get install -y nix-bin)`)
          : new NixCommandError(`cannot run ${command}: ${err.message}`),
      );
    });
    child.on("close", (code, signal) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString("utf8"));
      else reject(new NixCommandError(`${command} ${args[0] ?? ""} failed (${signal ?? `exit ${code}`}): ${nixErrorText(stderr)}`));
    });
  });
}

/** From the first `error:` line on, without colours; the last lines when there is none. */
export function nixErrorText(stderr: string): string {
  // biome-ignore lint: ANSI escapes are control characters by definition.
  const lines = stderr.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "").split("\n");
  const first = lines.findIndex((l) => l.startsWith("error:"));
  const text = (first === -1 ? lines.filter((l) => l.trim() !== "").slice(-10) : lines.slice(first)).join("\n").trim();
  return text === "" ? "no message" : text;
}

/** Splits arguments so one command line stays far below ARG_MAX. */
export function argumentChunks(items: readonly string[], maxBytes = 256 * 1024): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = Buffer.byteLength(item) + 9;
    if (current.length > 0 && bytes + size > maxBytes) {
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
