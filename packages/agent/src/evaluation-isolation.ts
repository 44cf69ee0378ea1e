/**
 * What confines the evaluator, the one process that runs a repository's Nix code (docs/security.md).
 * Nix's restricted mode (and pure mode for flakes) is the first wall; Nix 2.8 has holes in it
 * (`builtins.fetchTree { type = "path"; … }` and `builtins.path { sha256 = …; }` copy any
 * readable file into the store), so the evaluator also runs in mount, PID and network namespaces
 * of its own (`unshare`), where the agent's files are covered by empty ones, /proc shows only
 * the evaluator, and there is no network unless `allowedUris` opens it.
 */
import { lstatSync, readlinkSync, realpathSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AgentConfig, EvaluationIsolation } from "./config.ts";
import { AgentConfigError, AgentFatalError } from "./errors.ts";
import { runProcess } from "./process.ts";

/** What an evaluate task is allowed and limited to (from the config and the plan made at start). */
export interface EvaluationPolicy {
  plan: IsolationPlan;
  /** The real path of nix-instantiate. */
  nixInstantiate: string;
  allowedUris: string[];
  timeoutMs: number;
  maxAttributes: number;
  /** Whether `file://` clone URLs and local paths may be fetched (the local stack's agents). */
  allowLocalRepositories: boolean;
}

/** A path the evaluator must not see: an empty directory or an empty file takes its place. */
export interface HiddenPath {
  path: string;
  kind: "directory" | "file";
}

/** Worked out once at start: how every evaluator of this agent runs. */
export interface IsolationPlan {
  mode: EvaluationIsolation;
  /** Real paths, none inside another. */
  hidden: HiddenPath[];
  /** False: the evaluator gets a network namespace of its own, with nothing in it. */
  network: boolean;
  /** A non-root agent gets a user namespace too (where it may mount). */
  userNamespace: boolean;
  /** The evaluator's address-space limit, in bytes. */
  memoryBytes: number;
}

/**
 * Places on a typical machine that hold other people's secrets; hidden when they exist. The
 * agent's own files (and /tmp, where short-lived key files go) are added from the config.
 */
const SYSTEM_SECRETS = [
  "/root",
  "/home",
  "/var/lib",
  "/var/tmp",
  "/tmp",
  "/dev/shm",
  "/run/secrets",
  "/run/credentials",
  "/run/keys",
  "/run/user",
  "/etc/shadow",
  "/etc/gshadow",
  "/etc/ssh",
  "/etc/nix/netrc",
];

/** The evaluator needs these; nothing that contains one may be hidden. */
const NEEDED = ["/nix", "/usr", "/bin", "/lib", "/lib64", "/etc/nix/nix.conf", "/etc/passwd", "/etc/group"];

export interface PlanOptions {
  /** Nix's own setting files that may hold credentials (`netrc-file`, `secret-key-files`). */
  nixSecretFiles?: string[];
  /** The nix-instantiate the evaluator runs (resolved): it must stay visible. */
  evaluatorBinary?: string;
  /** Whether the agent runs as root (default: process.getuid() === 0). */
  root?: boolean;
  home?: string;
  tmpdir?: string;
}

/**
 * The agent's own paths (token, session and work directory, base directory, caches and secrets
 * files, what `evaluationHiddenPaths` adds) are hidden, as are the user's home, the temporary
 * directories and the system's secret places. A configured path that would hide the Nix store
 * itself is a configuration error.
 */
export function planIsolation(config: AgentConfig, options: PlanOptions = {}): IsolationPlan {
  const configured: Array<[string, string]> = [
    ["baseDirectory", config.baseDirectory],
    ["workDirectory", config.workDirectory],
    ["clusterJoinTokenPath", config.clusterJoinTokenPath],
    ...(config.binaryCachesPath ? [["binaryCachesPath", config.binaryCachesPath] as [string, string]] : []),
    ...(config.secretsJsonPath ? [["secretsJsonPath", config.secretsJsonPath] as [string, string]] : []),
    ...config.evaluation.hiddenPaths.map((p): [string, string] => ["evaluationHiddenPaths", p]),
  ];
  const needed = [...NEEDED, ...(options.evaluatorBinary ? [options.evaluatorBinary] : [])];
  const covers = (hidden: string) => needed.some((n) => contains(hidden, n));
  const candidates: string[] = [];
  const problems: string[] = [];
  for (const [key, p] of configured) {
    const real = realPath(p) ?? p;
    if (covers(real)) {
      problems.push(`${config.source}: "${key}" (${p}) would hide what Nix needs (the store, its binaries or nix.conf) from the evaluator: give the agent a directory of its own`);
    } else {
      candidates.push(real);
    }
  }
  if (problems.length > 0) throw new AgentConfigError(problems);
  const automatic = [
    options.home ?? os.homedir(),
    options.tmpdir ?? os.tmpdir(),
    ...SYSTEM_SECRETS,
    ...(options.nixSecretFiles ?? []),
  ];
  for (const p of automatic) {
    const real = realPath(p);
    // A home of "/" (some system users) cannot be hidden; the paths it holds are listed anyway.
    if (real !== undefined && !covers(real)) candidates.push(real);
  }
  return {
    mode: config.evaluation.isolation,
    hidden: outermost(candidates).flatMap((p): HiddenPath[] => {
      const kind = kindOf(p);
      return kind === undefined ? [] : [{ path: p, kind }];
    }),
    network: config.evaluation.allowedUris.length > 0,
    userNamespace: !(options.root ?? process.getuid?.() === 0),
    memoryBytes: config.evaluation.memoryBytes,
  };
}

/**
 * Run as `sh -c SCRIPT nimbus-evaluator TASK CWD MEMORY_KIB HIDDEN… -- COMMAND…` inside the new
 * namespaces: covers each hidden path (`dir:` with an empty tmpfs, `file:` with /dev/null), puts
 * the task's own directory back (reached through a descriptor opened before it was covered),
 * limits the address space and runs the command as a child, so that the shell is the namespace's
 * PID 1 and the command still gets the SIGTERM a cancel sends.
 */
const NAMESPACE_SCRIPT = `set -eu
task=$1 cwd=$2 memory=$3
shift 3
exec 3<"$task"
while [ "$1" != -- ]; do
  case $1 in
    dir:*) mount -t tmpfs -o mode=0755,size=1m,nr_inodes=4096,nosuid,nodev nimbus-hidden "\${1#dir:}" ;;
    file:*) mount --bind /dev/null "\${1#file:}" ;;
  esac
  shift
done
shift
mkdir -p "$task"
mount --no-canonicalize --bind /proc/self/fd/3 "$task"
exec 3<&-
cd "$cwd"
ulimit -v "$memory"
"$@"
`;

/** Without namespaces: only the address-space limit. */
const PLAIN_SCRIPT = `ulimit -v "$1"
shift
exec "$@"
`;

export interface IsolatedCommand {
  command: string;
  args: string[];
}

/**
 * The command line that runs `command args` as an evaluator: in `taskDirectory` (the only part of
 * the work directory it sees) with `cwd` as its working directory.
 */
export function isolatedCommand(plan: IsolationPlan, taskDirectory: string, cwd: string, command: string, args: readonly string[]): IsolatedCommand {
  const memoryKiB = String(Math.floor(plan.memoryBytes / 1024));
  if (plan.mode === "none") return { command: "sh", args: ["-c", PLAIN_SCRIPT, "nimbus-evaluator", memoryKiB, command, ...args] };
  return {
    command: "unshare",
    args: [
      ...(plan.userNamespace ? ["--user", "--map-root-user"] : []),
      "--mount",
      "--propagation",
      "private",
      "--pid",
      "--fork",
      "--kill-child",
      "--mount-proc",
      ...(plan.network ? [] : ["--net"]),
      "--",
      "sh",
      "-c",
      NAMESPACE_SCRIPT,
      "nimbus-evaluator",
      taskDirectory,
      cwd,
      memoryKiB,
      ...plan.hidden.map((h) => `${h.kind === "directory" ? "dir" : "file"}:${h.path}`),
      "--",
      command,
      ...args,
    ],
  };
}

/**
 * The evaluator's environment: what Nix needs and nothing of the agent's (no tokens, no
 * NIX_PATH). HOME and the caches point into the task's directory. Proxy settings are passed
 * only when the evaluator has a network.
 */
export function evaluatorEnvironment(plan: IsolationPlan, scratch: string, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const keep = [
    "PATH",
    "NIX_REMOTE",
    "NIX_CONF_DIR",
    "NIX_STORE_DIR",
    "NIX_STATE_DIR",
    "NIX_LOG_DIR",
    "NIX_DAEMON_SOCKET_PATH",
    "NIX_SSL_CERT_FILE",
    "SSL_CERT_FILE",
    "LANG",
    "LC_ALL",
    "TZ",
    ...(plan.network ? ["http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"] : []),
  ];
  const env: NodeJS.ProcessEnv = {};
  for (const name of keep) if (from[name] !== undefined) env[name] = from[name];
  return { ...env, HOME: scratch, XDG_CACHE_HOME: scratch, XDG_CONFIG_HOME: scratch, XDG_DATA_HOME: scratch, TMPDIR: scratch };
}

/**
 * Runs a tiny evaluation through the isolation (writing a .drv to the store) so that an agent
 * that cannot confine its evaluator says so at start rather than failing every evaluation.
 */
export async function checkIsolation(plan: IsolationPlan, evaluatorBinary: string, scratch: string): Promise<void> {
  const expression = `(derivation { name = "nimbus-isolation-check"; system = "x86_64-linux"; builder = "/bin/sh"; }).drvPath`;
  const { command, args } = isolatedCommand(plan, scratch, scratch, evaluatorBinary, [
    "--eval",
    "--read-write-mode",
    "--option",
    "restrict-eval",
    "true",
    "--option",
    "nix-path",
    "",
    "--expr",
    expression,
  ]);
  let result;
  try {
    result = await runProcess(command, args, { env: evaluatorEnvironment(plan, scratch), processGroup: true, signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    throw isolationFailed(plan, (err as Error).message);
  }
  if (result.code !== 0) {
    const why = result.stderr.trim().split("\n").slice(-3).join(" / ") || `exit status ${result.code ?? result.signal}`;
    throw isolationFailed(plan, why);
  }
}

function isolationFailed(plan: IsolationPlan, why: string): AgentFatalError {
  if (plan.mode === "none") {
    return new AgentFatalError("nix-failed", `Nix cannot evaluate here (the check with nix-instantiate failed: ${why})`);
  }
  const how = plan.userNamespace
    ? "a non-root agent needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or user.max_user_namespaces > 0) and util-linux's unshare"
    : "it needs util-linux's unshare and a kernel with mount, PID and network namespaces";
  return new AgentFatalError(
    "evaluation-isolation",
    `cannot isolate evaluations (${why}): ${how}. Evaluating repositories without it would let their code read this agent's token and session; ` +
      `if this machine runs only code you trust, set evaluationIsolation = "none" (docs/security.md)`,
  );
}

/**
 * `name` as found on PATH, with every directory's symlinks resolved (the evaluator runs it where
 * a profile in the home directory may be hidden). The file keeps its name: nix-instantiate is a
 * link to `nix`, which acts on the name it was called by.
 */
export function resolveExecutable(name: string, searchPath = process.env.PATH ?? ""): string | undefined {
  for (const dir of searchPath.split(":")) {
    if (dir === "") continue;
    let candidate = path.resolve(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      // Profiles link each command to the package's own, under the same name: follow those.
      for (let hops = 0; hops < 16 && lstatSync(candidate).isSymbolicLink(); hops++) {
        const target = path.resolve(path.dirname(candidate), readlinkSync(candidate));
        if (path.basename(target) !== name) break;
        candidate = target;
      }
      return path.join(realpathSync(path.dirname(candidate)), name);
    } catch {
      // Not here.
    }
  }
  return undefined;
}

function realPath(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

function kindOf(p: string): HiddenPath["kind"] | undefined {
  try {
    return statSync(p).isDirectory() ? "directory" : "file";
  } catch {
    return undefined;
  }
}

/** `outer` is `inner` or one of its ancestors. */
export function contains(outer: string, inner: string): boolean {
  return outer === "/" || inner === outer || inner.startsWith(`${outer}/`);
}

/** Sorted, without duplicates and without paths inside another (hiding the outer one hides them). */
export function outermost(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths)].sort();
  return sorted.filter((p) => !sorted.some((q) => q !== p && contains(q, p)));
}
