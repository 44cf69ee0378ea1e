import { AgentList } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { formatTable } from "../table.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

export function registerAgentsCommand(program: Command) {
  program
    .command("agents")
    .description("connected agents: systems, features, load and last heartbeat")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const { agents } = await api.get("/api/agents", AgentList);
      if (options.json) return void process.stdout.write(`${JSON.stringify({ agents }, null, 2)}\n`);
      const rows = agents.map((a) => [
        a.hostname,
        a.systems.join(","),
        a.systemFeatures.join(",") || "-",
        a.mandatoryFeatures.join(",") || "-",
        `${a.runningTasks}/${a.concurrentTasks}`,
        (a.caches ?? []).map((c) => `${c.name}${c.push ? "" : " (read)"}`).join(",") || "-",
        a.lastSeen,
      ]);
      process.stdout.write(formatTable(["HOST", "SYSTEMS", "FEATURES", "MANDATORY", "LOAD", "CACHES", "LAST SEEN"], rows));
      // A cache an agent cannot push to keeps its builds' dependents on that agent: worth a line each.
      for (const a of agents) for (const p of a.cacheProblems ?? []) process.stderr.write(`${a.hostname}: ${p.problem} (${p.at})\n`);
      if (agents.length === 0) process.stderr.write("no agents connected — see README.md to run one\n");
    });
}
