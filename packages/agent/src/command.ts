/** `nimbus agent --config agent.toml`: the agent as a long-running command. */
import { startAgent, type RunningAgent } from "./agent.ts";
import { type AgentConfig, loadAgentConfig } from "./config.ts";
import { type LogSink, stderrSink } from "./log.ts";

export interface RunAgentCommandOptions {
  /** Where log lines go; stderr by default. */
  log?: LogSink;
}

/**
 * Runs until SIGINT/SIGTERM or a fatal error (the message alone, no stack: exit code 1). The
 * first signal leaves as the config's `shutdown` says (pause; finish or hand back the running
 * tasks; goodbye; close with 1000: exit code 0); a second one during `finish` hands the tasks
 * back at once; one more exits at once with 130. SIGHUP reloads binary-caches.json. Sets
 * `process.exitCode` and also returns it.
 */
export async function runAgentCommand(configPath: string, options: RunAgentCommandOptions = {}): Promise<number> {
  const code = await run(configPath, options);
  process.exitCode = code;
  return code;
}

async function run(configPath: string, options: RunAgentCommandOptions): Promise<number> {
  let agent: RunningAgent;
  let config: AgentConfig;
  try {
    config = await loadAgentConfig(configPath);
    agent = await startAgent(config, { log: options.log });
  } catch (err) {
    process.stderr.write(`nimbus agent: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }

  const say = (line: string) => (options.log ?? stderrSink)(line);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      say(`info received ${signal}: shutting down (${config.shutdown})`);
      void agent.stop();
    } else if (signals === 2 && config.shutdown === "finish") {
      // "Don't wait for the builds": hand them back and leave cleanly.
      say(`info received ${signal} again: handing back the running tasks`);
      void agent.stop({ mode: "hand-back" });
    } else {
      // The user gave up waiting for a clean exit.
      say(`info received ${signal} again: exiting now`);
      process.exit(130);
    }
  };
  // SIGHUP: read binary-caches.json again (docs/agent.md, "Binary caches").
  const onHangup = () => {
    say(`info received SIGHUP: reloading ${config.binaryCachesPath ?? "the binary caches (none configured)"}`);
    void agent.reload();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onHangup);
  try {
    // A fatal error was already logged by the agent, as its last line.
    const exit = await agent.exited;
    return exit.reason === "stopped" ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onHangup);
  }
}
