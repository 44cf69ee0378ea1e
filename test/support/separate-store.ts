/**
 * A second "machine" on this host: commands run in a mount namespace whose /nix is a fresh
 * directory, so they see their own, empty Nix store and database. Nix's binaries live in
 * /usr/bin (Debian), outside /nix, so they work unchanged. Needs root and util-linux's unshare.
 * Files outside /nix (e.g. /tmp) stay shared, like a network share between machines.
 */
import { type ChildProcess, execFileSync, spawn, type SpawnOptions } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export interface SeparateStore {
  /** The directory mounted on /nix inside the namespace. */
  root: string;
  /** Environment for commands in it: its own XDG cache (Nix keeps narinfo lookups there). */
  env: NodeJS.ProcessEnv;
  /** Runs a command to completion inside the namespace. */
  run(command: string, args: readonly string[], options?: { env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Starts a long-running process (an agent) inside the namespace; its pid is the command's own. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  remove(): Promise<void>;
}

/**
 * Nix (no daemon, builds as the nixbld users) takes a build user by locking a file in
 * /nix/var/nix/userpool, and kills every process of that user before a build starts. Two stores
 * on one host with pools of their own would take the same users and kill each other's builders
 * (signal 9), which two machines never do: every namespace locks the host's pool instead.
 */
const HOST_USERPOOL = "/nix/var/nix/userpool";
/** Mounts the host's user pool into the store at $0, then the store (with it) on /nix, and runs the command. */
export const MOUNT_STORE = `mount --bind ${HOST_USERPOOL} "$0/var/nix/userpool" && mount --rbind "$0" /nix`;
const MOUNT_AND_EXEC = `${MOUNT_STORE} && exec "$@"`;

export async function createSeparateStore(parent = os.tmpdir()): Promise<SeparateStore> {
  if (process.getuid?.() !== 0) throw new Error("separate Nix stores need root (a mount namespace with its own /nix); run the tests as root");
  try {
    execFileSync("unshare", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("unshare not found — install util-linux (Debian: apt-get install -y util-linux)");
  }
  const root = await mkdtemp(path.join(parent, "nimbus-store-"));
  // Builders run as the nixbld users: they must reach /nix/store and write their outputs.
  await chmod(root, 0o755);
  const store = path.join(root, "store");
  await mkdir(store);
  const nixbld = groupId("nixbld");
  if (nixbld !== undefined) await chown(store, 0, nixbld);
  await chmod(store, 0o1775);
  await mkdir(HOST_USERPOOL, { recursive: true });
  await mkdir(path.join(root, "var/nix/userpool"), { recursive: true });
  const cacheHome = path.join(root, "xdg-cache");
  await mkdir(cacheHome);
  const env = { ...process.env, XDG_CACHE_HOME: cacheHome };
  const argv = (command: string, args: readonly string[]) => ["-m", "sh", "-c", MOUNT_AND_EXEC, root, command, ...args];

  return {
    root,
    env,
    run(command, args, options = {}) {
      return new Promise((resolve, reject) => {
        const child = spawn("unshare", argv(command, args), { env: options.env ?? env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => {
          if (/mount: .*(permission denied|must be superuser)|unshare failed/i.test(stderr)) {
            reject(new Error(`cannot make a mount namespace here: ${stderr.trim()}`));
          } else resolve({ code, stdout, stderr });
        });
      });
    },
    spawn(command, args, options = {}) {
      return spawn("unshare", argv(command, args), { env, ...options });
    },
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

function groupId(name: string): number | undefined {
  try {
    const line = execFileSync("getent", ["group", name], { encoding: "utf8" });
    return Number(line.split(":")[2]);
  } catch {
    return undefined;
  }
}
