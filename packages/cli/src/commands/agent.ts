import { runAgentCommand } from "@nimbus/agent";
import type { Command } from "commander";

export function registerAgentCommand(program: Command) {
  program
    .command("agent")
    .description("run an agent that builds for a Nimbus stack")
    .requiredOption("--config <file>", "the agent's TOML configuration (see docs/agent.md)")
    .action(async (options: { config: string }) => {
      await runAgentCommand(options.config);
    });
}
