/**
 * A remote builder for tests (docs/agent.md, "Remote builders"): Debian's sshd on a loopback
 * port with a key made here, whose every session runs in a mount namespace with its own /nix —
 * another machine's Nix store, as far as Nix can tell — and with the features given.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { createSeparateStore, MOUNT_STORE, type SeparateStore } from "./separate-store.ts";

const SSHD = "/usr/sbin/sshd";

export interface SshRemote {
  /** The line for Nix's `builders` (uri, systems, key, jobs, speed, supported features). */
  machine: string;
  /** For the agent's environment: how Nix's ssh reaches the port. */
  env: Record<string, string>;
  store: SeparateStore;
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export async function startSshRemote(dir: string, features: string[]): Promise<SshRemote> {
  if (!existsSync(SSHD)) throw new Error("sshd not found — install Debian's openssh-server (apt-get install -y openssh-server)");
  const store = await createSeparateStore(dir);
  const keys = path.join(dir, "ssh");
  await mkdir(keys, { recursive: true, mode: 0o700 });
  const key = (name: string) => execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(keys, name)]);
  key("host");
  key("client");
  await writeFile(path.join(keys, "authorized_keys"), execFileSync("cat", [path.join(keys, "client.pub")]), { mode: 0o600 });
  // Every session: the remote's own features, no substituters, its own /nix.
  const wrapper = path.join(keys, "remote.sh");
  await writeFile(
    wrapper,
    [
      "#!/bin/sh",
      `export NIX_CONFIG="extra-system-features = ${features.join(" ")}`,
      'substituters ="',
      `export XDG_CACHE_HOME=${store.root}/xdg-cache`,
      `exec unshare -m sh -c '${MOUNT_STORE} && exec sh -c "$SSH_ORIGINAL_COMMAND"' ${store.root}`,
      "",
    ].join("\n"),
  );
  await chmod(wrapper, 0o755);
  const port = await freePort();
  const config = path.join(keys, "sshd_config");
  await writeFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${path.join(keys, "host")}`,
      `AuthorizedKeysFile ${path.join(keys, "authorized_keys")}`,
      `PidFile ${path.join(keys, "sshd.pid")}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "PermitRootLogin prohibit-password",
      `ForceCommand ${wrapper}`,
      "",
    ].join("\n"),
  );
  await mkdir("/run/sshd", { recursive: true });
  let output = "";
  const sshd: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "pipe", "pipe"] });
  sshd.stdout!.on("data", (d) => (output += d));
  sshd.stderr!.on("data", (d) => (output += d));
  const deadline = Date.now() + 10_000;
  while (!/Server listening/.test(output)) {
    if (Date.now() > deadline || sshd.exitCode !== null) throw new Error(`sshd did not start: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const user = process.env.USER ?? "root";
  return {
    machine: `ssh://${user}@127.0.0.1 x86_64-linux ${path.join(keys, "client")} 1 1 ${features.join(",")}`,
    env: { NIX_SSHOPTS: `-p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR` },
    store,
    log: () => output,
    async stop() {
      sshd.kill("SIGTERM");
      await store.remove();
    },
  };
}
