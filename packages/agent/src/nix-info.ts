/** What the local Nix can build: its systems, features, substituters and version. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { AgentFatalError } from "./errors.ts";
import { readMachines, type RemoteMachine } from "./nix-machines.ts";

const run = promisify(execFile);

export interface NixInfo {
  nixVersion: string;
  /** `system` first, then `extra-platforms`, without duplicates. */
  systems: string[];
  systemFeatures: string[];
  substituters: string[];
  /** Nix's `netrc-file` (credentials for HTTP substituters), when it reports one. */
  netrcFile?: string;
  /** Whether Nix builds in its sandbox (nix.conf's `sandbox`; Debian's default is off). */
  sandbox?: boolean;
  /** Nix's `build-users-group`: empty means a root Nix builds as root. */
  buildUsersGroup?: string;
  /** Files Nix reads credentials from (`netrc-file`, `secret-key-files`): hidden from evaluation. */
  credentialFiles?: string[];
  /** Nix's remote builders (its `builders` setting, machines files read). */
  remoteMachines?: RemoteMachine[];
  /** Nix's `build-hook` (build-hook.ts replaces Nix's own when there are no remote builders). */
  buildHook?: string;
  /** Nix's `store` ("auto": its own store when writable, else the daemon). */
  store?: string;
  /** Nix's `max-silent-time`, `timeout` (seconds) and `max-build-log-size` (bytes); 0 is no limit. */
  buildLimits?: BuildLimits;
}

/** The limits a build runs under, as Nix's settings have them. */
export interface BuildLimits {
  maxSilentTime: number;
  buildTimeout: number;
  maxLogSize: number;
}

export interface DetectNixOptions {
  /** The `nix` executable; a bare name is looked up on PATH. */
  nixBinary?: string;
  /** Settings to apply as `--option NAME VALUE` (the config's `nixSettings`). */
  nixSettings?: Record<string, string>;
  timeoutMs?: number;
}

/** `nix show-config --json` reports each setting as `{ value, … }`. */
interface NixSetting {
  value?: unknown;
}

export const NIX_NOT_FOUND_MESSAGE = "Nix not found — install it (Debian: apt-get install -y nix-bin)";

/** Asks Nix, as builds will run it (same settings), what this machine can build. */
export async function detectNix(options: DetectNixOptions = {}): Promise<NixInfo> {
  const nix = options.nixBinary ?? "nix";
  const settingArgs = Object.entries(options.nixSettings ?? {}).flatMap(([name, value]) => ["--option", name, value]);
  const exec = (args: string[]) =>
    run(nix, args, { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" }).catch(
      (err: NodeJS.ErrnoException & { stderr?: string }) => {
        if (err.code === "ENOENT") throw new AgentFatalError("nix-not-found", NIX_NOT_FOUND_MESSAGE);
        const detail = err.stderr?.trim().split("\n").at(-1) ?? err.message;
        throw new AgentFatalError("nix-failed", `\`${nix} ${args.join(" ")}\` failed: ${detail}`);
      },
    );

  const [config, version] = await Promise.all([
    exec(["--extra-experimental-features", "nix-command", ...settingArgs, "show-config", "--json"]),
    exec(["--version"]),
  ]);

  let settings: Record<string, NixSetting>;
  try {
    settings = JSON.parse(config.stdout) as Record<string, NixSetting>;
  } catch {
    throw new AgentFatalError("nix-failed", `\`${nix} show-config --json\` did not print JSON`);
  }
  const system = settings["system"]?.value;
  if (typeof system !== "string" || system === "") {
    throw new AgentFatalError("nix-failed", `\`${nix} show-config --json\` reports no "system"`);
  }
  const builders = typeof settings["builders"]?.value === "string" ? (settings["builders"].value as string) : "";
  const remoteMachines = builders.trim() === "" ? [] : await readMachines(builders, system);
  return {
    nixVersion: parseNixVersion(version.stdout),
    ...(remoteMachines.length > 0 ? { remoteMachines } : {}),
    ...(typeof settings["build-hook"]?.value === "string" ? { buildHook: settings["build-hook"].value } : {}),
    ...(typeof settings["store"]?.value === "string" ? { store: settings["store"].value } : {}),
    buildLimits: {
      maxSilentTime: count(settings["max-silent-time"]),
      buildTimeout: count(settings["timeout"]),
      maxLogSize: count(settings["max-build-log-size"]),
    },
    systems: [...new Set([system, ...stringList(settings["extra-platforms"])])],
    systemFeatures: stringList(settings["system-features"]),
    substituters: stringList(settings["substituters"]),
    ...(typeof settings["netrc-file"]?.value === "string" && settings["netrc-file"].value !== "" ? { netrcFile: settings["netrc-file"].value } : {}),
    // "relaxed" sandboxes too; false and "false" do not.
    sandbox: ![false, "false", undefined].includes(settings["sandbox"]?.value as never),
    buildUsersGroup: typeof settings["build-users-group"]?.value === "string" ? (settings["build-users-group"].value as string) : "",
    credentialFiles: [
      ...(typeof settings["netrc-file"]?.value === "string" && settings["netrc-file"].value !== "" ? [settings["netrc-file"].value as string] : []),
      ...stringList(settings["secret-key-files"]),
    ],
  };
}

/** A whole number of seconds or bytes as `show-config` reports it; anything else is no limit. */
function count(setting: NixSetting | undefined): number {
  const value = Number(setting?.value);
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/** "nix (Nix) 2.8.0" → "2.8.0"; anything unexpected is kept whole rather than guessed at. */
export function parseNixVersion(output: string): string {
  const line = output.trim().split("\n")[0] ?? "";
  return /(\d+\.\d+[^\s]*)\s*$/.exec(line)?.[1] ?? (line.slice(0, 64) || "unknown");
}

/** List settings are JSON arrays; older Nix versions print them as one space-separated string. */
function stringList(setting: NixSetting | undefined): string[] {
  const value = setting?.value;
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string" && v !== "");
  if (typeof value === "string") return value.split(/\s+/).filter((v) => v !== "");
  return [];
}
