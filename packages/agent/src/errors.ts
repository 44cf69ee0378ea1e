/**
 * The two ways the agent gives up. Both carry a message written for the person running the
 * agent (what is wrong and what to do), so the CLI prints `message` alone, never a stack.
 */

/** The configuration file, or a file it points to, cannot be used as it is. */
export class AgentConfigError extends Error {
  override readonly name = "AgentConfigError";
  /** One line per problem; `message` is these lines joined. */
  readonly problems: readonly string[];

  constructor(problems: string | readonly string[]) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(list.join("\n"));
    this.problems = list;
  }
}

/** Why the agent stopped for good instead of reconnecting. */
export type FatalCode =
  | "token-refused"
  | "protocol-version"
  | "service-refused"
  /** The service does not accept the session in `session.json`. */
  | "session-refused"
  | "nix-not-found"
  | "nix-failed"
  | "invalid-agent-info"
  /** The evaluator cannot be confined here (docs/security.md). */
  | "evaluation-isolation"
  /** A bug: the message says what broke. */
  | "internal";

/** Retrying cannot help: the agent stops and the CLI exits non-zero. */
export class AgentFatalError extends Error {
  override readonly name = "AgentFatalError";

  constructor(
    readonly code: FatalCode,
    message: string,
  ) {
    super(message);
  }
}
