/** `nimbus agent --config agent.toml`: the agent as a long-running command. */
import { startAgent, type RunningAgent } from "./agent.ts";
import { loadAgentConfig } from "./config.ts";
import { type LogSink, stderrSink } from "./log.ts";

export interface RunAgentCommandOptions {
  /** Where log lines go; stderr by default. */
  log?: LogSink;
}

/**
 * Runs until SIGINT/SIGTERM (then closes the socket with 1000: exit code 0) or a fatal error
 * (the message alone, no stack: exit code 1). Sets `process.exitCode` and also returns it.
 */
export async function runAgentCommand(configPath: string, options: RunAgentCommandOptions = {}): Promise<number> {
  const code = await run(configPath, options);
  process.exitCode = code;
  return code;
}

async function run(configPath: string, options: RunAgentCommandOptions): Promise<number> {
  let agent: RunningAgent;
  try {
    const config = await loadAgentConfig(configPath);
    agent = await startAgent(config, { log: options.log });
  } catch (err) {
    process.stderr.write(`nimbus agent: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now": the user gave up waiting for a clean close.
      process.exit(130);
    }
    stopping = true;
    (options.log ?? stderrSink)(`info received ${signal}`);
    void agent.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    // A fatal error was already logged by the agent, as its last line.
    const exit = await agent.exited;
    return exit.reason === "stopped" ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
