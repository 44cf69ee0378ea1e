import { printable } from "./terminal-text.ts";

/**
 * The agent's log: one line per event. Callers inject a `LogSink` (a line in, e.g. `nimbus dev`
 * prefixing its own); by default lines go to stderr with a timestamp.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Receives finished lines: `<level> <message>`, already filtered by level. */
export type LogSink = (line: string) => void;

/** What the agent's modules call. */
export type Logger = (level: LogLevel, message: string) => void;

export const stderrSink: LogSink = (line) => {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
};

/**
 * Drops lines below `minLevel` (the config's `logLevel`) and hands the rest to `sink`, each one
 * line with no terminal control sequences: messages quote repositories (evaluation errors).
 */
export function createLogger(minLevel: LogLevel, sink: LogSink = stderrSink): Logger {
  const min = LOG_LEVELS.indexOf(minLevel);
  return (level, message) => {
    if (LOG_LEVELS.indexOf(level) >= min) sink(`${level} ${printable(message)}`);
  };
}
