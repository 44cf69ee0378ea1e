import { Command, CommanderError } from "commander";
import { printableLines } from "@nimbus/agent/terminal-text";
import { NIMBUS_VERSION } from "@nimbus/protocol";
import { CliError } from "./cli-error.ts";
import { registerAgentCommand } from "./commands/agent.ts";
import { registerAgentsCommand } from "./commands/agents.ts";
import { registerDashboardCommand } from "./commands/dashboard.ts";
import { registerDevCommand } from "./commands/dev.ts";
import { registerJobCommand } from "./commands/job.ts";
import { registerJobsCommand } from "./commands/jobs.ts";
import { registerSchedulesCommand } from "./commands/schedules.ts";
import { registerLogsCommand } from "./commands/logs.ts";
import { registerTokenCommands } from "./commands/token.ts";
import { registerCacheCommands } from "./commands/cache.ts";
import { registerTriggerCommand } from "./commands/trigger.ts";

const program = new Command("nimbus")
  .description("Nimbus: serverless CI for Nix")
  .version(NIMBUS_VERSION)
  .option("--api <url>", "the HTTP API of a deployed stack (default: the local one on NIMBUS_PORT)")
  .option("--token <token>", "API token for --api (default: NIMBUS_TOKEN, or the local stack's)")
  .option("--data-dir <dir>", "the local stack's data directory (default: NIMBUS_DATA_DIR or .nimbus)")
  .option("--port <port>", "the local stack's port (default: NIMBUS_PORT or 4800)")
  .exitOverride()
  .showHelpAfterError();

registerDevCommand(program);
registerTokenCommands(program);
registerCacheCommands(program);
registerAgentsCommand(program);
registerAgentCommand(program);
registerTriggerCommand(program);
registerJobCommand(program);
registerJobsCommand(program);
registerSchedulesCommand(program);
registerLogsCommand(program);
registerDashboardCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  if (error instanceof CliError) {
    // Messages may quote what agents and repositories sent: shown as text only.
    process.stderr.write(`nimbus: ${printableLines(error.message)}\n`);
    process.exit(error.exitCode);
  }
  throw error;
}
