/**
 * Nix 2.8 starts its build hook (`build-remote`, a whole `nix` process) for every derivation it
 * builds, even when it has no remote builders, only to be told "decline-permanently": a third of
 * the CPU of a trivial build. An agent whose Nix has no remote builders and builds in a store of
 * its own points `build-hook` at a script that declines at once (docs/agent.md, "Build").
 */
import { access, chmod, constants, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { NixInfo } from "./nix-info.ts";
import { runProcess } from "./process.ts";

/** Nix's hook protocol: the reply is a line on the hook's stderr; stdin (Nix's settings) is read to the end. */
export const DECLINE_HOOK_SCRIPT = [
  "#!/bin/sh",
  "# Written by the Nimbus agent: its Nix has no remote builders, so every build is declined at once.",
  'echo "# decline-permanently" >&2',
  "exec cat >/dev/null",
  "",
].join("\n");

const DECLINE_LINE = "# decline-permanently";

/**
 * Why the agent leaves Nix's build hook alone, or undefined when it may replace it: not with
 * remote builders (the hook is what reaches them), not with a hook other than Nix's own, and
 * not when a daemon builds (its hook runs as the daemon's user, and it is the daemon's setting).
 */
export function keepBuildHook(nix: Pick<NixInfo, "remoteMachines" | "buildHook" | "store">, env: NodeJS.ProcessEnv, stateDirWritable: boolean): string | undefined {
  if ((nix.remoteMachines?.length ?? 0) > 0) return "Nix has remote builders";
  if (nix.buildHook === undefined || !/(^|\/)build-remote$|__build-remote/.test(nix.buildHook.trim())) return "Nix's build hook is not its own build-remote";
  if (!["auto", "local", ""].includes(nix.store ?? "auto")) return `Nix's store is "${nix.store}"`;
  if (!["auto", "local", "", undefined].includes(env["NIX_REMOTE"])) return `NIX_REMOTE is "${env["NIX_REMOTE"]}"`;
  if (!stateDirWritable) return "Nix's state directory is not writable here (a daemon builds)";
  return undefined;
}

/**
 * Writes the declining hook to `directory` and tries it once; the `--option build-hook` pair for
 * builds, or none (with the reason) when the hook stays Nix's own.
 */
export async function declineHookArgs(nix: Pick<NixInfo, "remoteMachines" | "buildHook" | "store">, directory: string, env: NodeJS.ProcessEnv = process.env): Promise<{ args: string[]; reason?: string }> {
  const stateDir = env["NIX_STATE_DIR"] || "/nix/var/nix";
  const writable = await access(stateDir, constants.W_OK).then(
    () => true,
    () => false,
  );
  const kept = keepBuildHook(nix, env, writable);
  if (kept !== undefined) return { args: [], reason: kept };
  const file = path.join(directory, "nix-build-hook");
  // Newer Nix splits the setting at spaces.
  if (/\s/.test(file)) return { args: [], reason: `its path has a space (${file})` };
  // Written beside it and renamed over it: a Nix of another agent sharing the directory may be running the old one.
  const written = `${file}.${process.pid}.tmp`;
  await writeFile(written, DECLINE_HOOK_SCRIPT, { mode: 0o700 });
  await chmod(written, 0o700);
  await rename(written, file);
  // A work directory mounted noexec would fail every build: tried once here instead.
  const tried = await runProcess(file, []).catch((err: Error) => ({ code: -1, stderr: err.message }));
  if (tried.code !== 0 || tried.stderr.trim() !== DECLINE_LINE) return { args: [], reason: `${file} could not be run: ${tried.stderr.trim().slice(0, 200) || `exit ${tried.code}`}` };
  return { args: ["--option", "build-hook", file] };
}
