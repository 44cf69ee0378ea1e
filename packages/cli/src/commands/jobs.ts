import { JobList } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { CliError } from "../cli-error.ts";
import { formatTable } from "../table.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

export function registerJobsCommand(program: Command) {
  program
    .command("jobs")
    .description("jobs, newest first")
    .option("--limit <n>", "how many (1–200)", "50")
    .option("--cursor <cursor>", "the next page: the cursor a previous `--json` listing printed")
    .option("--json", "print JSON (GET /api/jobs), with a cursor when more follow")
    .action(async (options: { limit: string; cursor?: string; json?: boolean }, command: Command) => {
      if (!/^\d+$/.test(options.limit)) throw new CliError("--limit must be a whole number from 1 to 200");
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const query = new URLSearchParams({ limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) });
      const list = await api.get(`/api/jobs?${query}`, JobList);
      if (options.json) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      const rows = list.jobs.map((j) => [j.id, j.status, j.repository, j.ref ?? "-", j.commit.slice(0, 12), j.createdAt]);
      process.stdout.write(formatTable(["ID", "STATUS", "REPOSITORY", "REF", "COMMIT", "CREATED"], rows));
      if (list.jobs.length === 0) process.stderr.write("no jobs yet — start one with `nimbus trigger <repository>`\n");
      if (list.cursor) process.stderr.write("more jobs follow: `nimbus jobs --json` prints the cursor for `--cursor`\n");
    });
}
