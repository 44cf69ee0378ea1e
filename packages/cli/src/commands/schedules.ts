import { ScheduleList } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { formatTable } from "../table.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

/** `nimbus schedules`: each repository's `onSchedule` handlers and when they next run (docs/effects.md). */
export function registerSchedulesCommand(program: Command) {
  program
    .command("schedules")
    .description("the onSchedule handlers of default branches, with their next run (UTC)")
    .option("--json", "print JSON (GET /api/schedules)")
    .action(async (options: { json?: boolean }, command: Command) => {
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const list = await api.get("/api/schedules", ScheduleList);
      if (options.json) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      const rows = list.schedules.map((s) => [s.repository, s.name, s.nextRunAt ?? "never", s.lastRunAt ?? "-", s.lastJobId ?? "-", s.commit.slice(0, 12)]);
      process.stdout.write(formatTable(["REPOSITORY", "SCHEDULE", "NEXT RUN", "LAST RUN", "LAST JOB", "COMMIT"], rows));
      if (list.schedules.length === 0) process.stderr.write("no schedules: a default branch's herculesCI.onSchedule makes them (docs/effects.md)\n");
    });
}
