/** How the agent calls Nix: the same settings for every invocation, and Nix's errors made readable. */
import type { NixBuilders } from "./nix-builders.ts";

/** What every task's Nix invocations share. */
export interface NixEnvironment {
  /**
   * `--option NAME VALUE` pairs, flattened: the effective settings (see `effectiveNixSettings`)
   * and the configured caches as substituters with their public keys trusted. No secrets.
   */
  optionArgs: string[];
  /**
   * `--option netrc-file <private netrc>` when a configured cache needs credentials to be read:
   * for the Nix calls that substitute or push, never for evaluating a repository's code.
   */
  credentialArgs: string[];
  /** This agent's systems, Nix's own first (flake outputs are looked up for each). */
  systems: string[];
  /** `system-features` for builds: the agent's features and mandatory features. */
  buildFeatures: string[];
  /** More `--option`s for a derivation's build alone: the declining build hook (build-hook.ts), or none. */
  buildArgs: string[];
  /** Long-lived `nix-store --serve --write` processes builds go to when their inputs are here (nix-builders.ts). */
  builders?: NixBuilders;
}

/**
 * The config's `nixSettings`, after `substituters = ""` when the machine's own substituters
 * are turned off (`machineSubstituters = false`: tests, offline machines — Nix would otherwise
 * wait on DNS for cache.nixos.org on every call). The empty value comes first so the config's
 * `substituters` or `extra-substituters` (and the configured caches) still add to it.
 */
export function effectiveNixSettings(nixSettings: Record<string, string>, machineSubstituters = true): Record<string, string> {
  return machineSubstituters ? { ...nixSettings } : { substituters: "", ...nixSettings };
}

export function nixOptionArgs(settings: Record<string, string>): string[] {
  return Object.entries(settings).flatMap(([name, value]) => ["--option", name, value]);
}

const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const SHOW_TRACE_HINT = /^\(use '--show-trace' to show detailed location information\)$/;

/**
 * The part of Nix's stderr that explains a failure: from the first `error:` line on, without
 * colours or the `--show-trace` hint; `replace` turns e.g. the checkout's path into nothing.
 */
export function nixErrorMessage(stderr: string, replace: Array<[string, string]> = []): string {
  const lines = stderr.replace(ANSI, "").split("\n");
  const first = lines.findIndex((line) => line.startsWith("error:"));
  let text = (first === -1 ? lines.filter((l) => l.trim() !== "").slice(-20) : lines.slice(first))
    .filter((line) => !SHOW_TRACE_HINT.test(line))
    .join("\n")
    .trimEnd();
  for (const [from, to] of replace) if (from !== "") text = text.split(from).join(to);
  return text === "" ? "Nix failed without a message" : text;
}
