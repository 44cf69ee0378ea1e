/** Runs a command to its end (test/infra.test.ts, test/infra-typecheck.test.ts): its exit code and output, never a throw. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `file` with `args` in the repository's root; `code` is null when it was killed (e.g. past `timeoutMs`). */
export function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: root, env: options.env ?? process.env, timeout: options.timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** The last 40 lines of what it printed, for an assertion's message. */
export const output = (r: Run) => `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-40).join("\n");
