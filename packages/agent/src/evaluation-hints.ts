/**
 * What an evaluation error means under the agent's confinement (docs/security.md): Nix's own
 * message says what was refused; the line added says why and which setting governs it.
 */
import type { EvaluationPolicy } from "./evaluation-isolation.ts";

const RESTRICTED = /forbidden in (restricted mode|pure eval mode)|was not found in the Nix search path/;
/** Nix 2.8 suggests this for pure mode; it is not the repository's to choose. */
const IMPURE_HINT = / \(use '--impure' to override\)/g;
const NO_NETWORK = /unable to download|Couldn't resolve host|Could not resolve host|Network is unreachable|Connection refused/;
const OUT_OF_MEMORY = /error: out of memory|std::bad_alloc|Cannot allocate memory/;

export function evaluationHints(message: string, policy: Pick<EvaluationPolicy, "plan">): string {
  const text = message.replace(IMPURE_HINT, "");
  const hints: string[] = [];
  if (RESTRICTED.test(text)) {
    hints.push(
      "Nimbus evaluates in Nix's restricted mode (pure mode for flakes): only the repository's own files can be read, " +
        "no search path such as <nixpkgs> is set, and only URIs in the agent's allowedUris can be fetched (docs/security.md)",
    );
  }
  if (!policy.plan.network && NO_NETWORK.test(text)) {
    hints.push("the evaluator has no network: an agent's allowedUris opens it (docs/security.md)");
  }
  if (OUT_OF_MEMORY.test(text)) {
    hints.push(`the evaluator may use at most ${policy.plan.memoryBytes / (1024 * 1024)} MiB (evaluationMemoryMiB)`);
  }
  return hints.length === 0 ? text : `${text}\n${hints.map((h) => `(${h})`).join("\n")}`;
}
