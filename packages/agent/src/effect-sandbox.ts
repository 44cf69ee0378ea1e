/**
 * The sandbox an effect runs in (docs/effects.md, "The sandbox"): bubblewrap with namespaces of
 * its own and the machine's network, a fresh root holding only the Nix store, the machine's
 * system directories read-only, the effect's own `/build`, `/etc` and `/secrets`, and the
 * mountables it was allowed. Nothing of the agent's — its directories, token, session, caches'
 * keys, `secrets.json` — is in it. The rules are pure; tasks/effect.ts runs the command.
 */
import type { EffectMountable } from "./config.ts";
import { conditionText, evaluateCondition, type SecretContext } from "./secrets-json.ts";

/** A mount an effect asked for (`__hci_effect_mounts`) and was allowed. */
export interface EffectMount {
  /** Where the effect sees it. */
  path: string;
  source: string;
  readOnly: boolean;
}

/** The effect asked for a mount it may not have. */
export class MountRefusedError extends Error {
  override readonly name = "MountRefusedError";
}

/** Paths of the sandbox an effect cannot mount over. */
const RESERVED = ["/nix", "/secrets", "/build", "/proc", "/dev"];

/**
 * The mounts an effect asked for in `__hci_effect_mounts` (`{"/path/in/effect": "mountable"}`),
 * each checked as Hercules checks it: a canonical absolute path, not over the sandbox's own,
 * naming a mountable of agent.toml whose condition holds for the job.
 */
export function effectMounts(value: string | undefined, mountables: Readonly<Record<string, EffectMountable>>, context: SecretContext): EffectMount[] {
  if (value === undefined || value.trim() === "") return [];
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    throw new MountRefusedError("the effect's __hci_effect_mounts is not JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new MountRefusedError("the effect's __hci_effect_mounts must be an object from paths to mountable names");
  const mounts: EffectMount[] = [];
  for (const [path, name] of Object.entries(raw)) {
    if (!path.startsWith("/") || path.includes("/.") || path.includes("//") || path.length > 1024) {
      throw new MountRefusedError(`mount path ${JSON.stringify(path)} must be an absolute path without "/." or "//"`);
    }
    const reserved = RESERVED.find((r) => path === r || path.startsWith(`${r}/`) || path === "/");
    if (reserved !== undefined || path === "/") throw new MountRefusedError(`mount path ${JSON.stringify(path)} is not allowed: it would cover ${reserved ?? "/"}`);
    const mountable = typeof name === "string" ? mountables[name] : undefined;
    // Which mountables exist, and why one is refused, are the agent's business: one message for both.
    const refused = `the effect asks to mount ${JSON.stringify(name)} at ${path}, but this agent has no such mountable (effectMountables), or its condition does not allow it for ${context.owner}/${context.repo} at ${context.ref}`;
    if (!mountable) throw new MountRefusedError(refused);
    const { holds } = evaluateCondition(mountable.condition, context);
    if (!holds) throw new MountRefusedError(`${refused} (its condition is ${conditionText(mountable.condition)})`);
    mounts.push({ path, source: mountable.source, readOnly: mountable.readOnly });
  }
  return mounts;
}

export interface SandboxPlan {
  /** The bwrap executable. */
  bwrap: string;
  /** Host directories: the effect's `/build` (its working directory), `/etc` and `/secrets`. */
  build: string;
  etc: string;
  secrets: string;
  mounts: readonly EffectMount[];
  builder: string;
  args: readonly string[];
  /** The derivation's environment. */
  derivationEnv: Readonly<Record<string, string>>;
  apiBaseUrl: string;
}

/** The machine's directories an effect may read, as a build with Nix's sandbox off may: its builder may be `/bin/sh`. */
const SYSTEM_DIRECTORIES = ["/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64"];
/** Name resolution for the network effects have. */
const ETC_FILES = ["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf"];

/**
 * The environment as Hercules sets it: its defaults, then the derivation's, then what the
 * sandbox fixes (the build directory, the secrets file). No variable of the agent's.
 */
export function effectEnvironment(plan: Pick<SandboxPlan, "derivationEnv" | "apiBaseUrl">): Record<string, string> {
  return {
    PATH: "/path-not-set",
    HOME: "/homeless-shelter",
    NIX_STORE: "/nix/store",
    NIX_BUILD_CORES: "1",
    IN_HERCULES_CI_EFFECT: "true",
    HERCULES_CI_API_BASE_URL: plan.apiBaseUrl,
    ...plan.derivationEnv,
    // Where the granted secrets are, whatever the derivation says: nowhere else holds them.
    HERCULES_CI_SECRETS_JSON: "/secrets/secrets.json",
    NIX_BUILD_TOP: "/build",
    TMPDIR: "/build",
    TEMPDIR: "/build",
    TMP: "/build",
    TEMP: "/build",
    NIX_LOG_FD: "2",
    TERM: "xterm-256color",
  };
}

/** The bwrap command line that runs the effect's builder in its sandbox. */
export function sandboxCommand(plan: SandboxPlan): { command: string; args: string[] } {
  const env = effectEnvironment(plan);
  const args = [
    "--unshare-all",
    "--share-net",
    "--die-with-parent",
    "--new-session",
    // Hercules' default: the effect sees itself as root, of its own user namespace only.
    ...["--uid", "0", "--gid", "0"],
    ...["--ro-bind", "/nix/store", "/nix/store"],
    ...SYSTEM_DIRECTORIES.flatMap((d) => ["--ro-bind-try", d, d]),
    ...["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"],
    ...["--bind", plan.build, "/build"],
    ...["--bind", plan.etc, "/etc"],
    ...ETC_FILES.flatMap((f) => ["--ro-bind-try", f, f]),
    ...["--ro-bind", plan.secrets, "/secrets"],
    ...plan.mounts.flatMap((m) => [m.readOnly ? "--ro-bind" : "--bind", m.source, m.path]),
    ...["--chdir", "/build", "--clearenv"],
    ...Object.entries(env).flatMap(([name, value]) => ["--setenv", name, value]),
    "--",
    plan.builder,
    ...plan.args,
  ];
  return { command: plan.bwrap, args };
}
