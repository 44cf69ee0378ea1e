import type { Command } from "commander";

export function registerAgentCommand(program: Command) {
  program
    .command("agent")
    .description("run an agent that builds for a Nimbus stack")
    .requiredOption("--config <file>", "the agent's TOML configuration (see docs/agent.md)")
    .action(async (options: { config: string }) => {
      // Loaded here, not at the top: every other command starts without the agent's modules.
      const { runAgentCommand } = await import("@nimbus/agent");
      await runAgentCommand(options.config);
    });
}
