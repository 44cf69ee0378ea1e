export { type AgentConfig, loadAgentConfig, parseAgentConfig, SHUTDOWN_MODES, type ShutdownMode } from "./config.ts";
export { type LoadedSession, loadSessionCredential, SESSION_FILE_NAME } from "./session-credential.ts";
export { readClusterJoinToken } from "./join-token.ts";
export { type DetectNixOptions, detectNix, NIX_NOT_FOUND_MESSAGE, type NixInfo, parseNixVersion } from "./nix-info.ts";
export { buildAgentInfo } from "./agent-info.ts";
export { Backoff, type BackoffOptions } from "./backoff.ts";
export {
  type AgentErrorEvent,
  type AgentEventMap,
  type AgentExit,
  type Disconnected,
  type RunningAgent,
  type ShutdownStep,
  type StartAgentOptions,
  type StopOptions,
  startAgent,
} from "./agent.ts";
export { type Clock, systemClock, type TimerHandle } from "./clock.ts";
export { type RunAgentCommandOptions, runAgentCommand } from "./command.ts";
export { type TaskFinished, type TaskStarted } from "./task-runner.ts";
export { type TaskKindName } from "./tasks/registry.ts";
export { effectiveNixSettings } from "./nix-options.ts";
export { AgentConfigError, AgentFatalError, type FatalCode } from "./errors.ts";
export { createLogger, LOG_LEVELS, type Logger, type LogLevel, type LogSink, stderrSink } from "./log.ts";
export { printable, printableLines } from "./terminal-text.ts";
export { declineHookArgs } from "./build-hook.ts";
export { NixBuilders, type ServeBuildRun } from "./nix-builders.ts";
