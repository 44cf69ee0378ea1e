/**
 * Real Nix for the cache tests: derivations that need no nixpkgs, unique to this run (a nonce),
 * built offline, and keys made by Nix itself. A missing Nix fails the test with what to install.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export const NONCE = randomBytes(6).toString("hex");

/** The environment for Nix in tests: its own cache directory, so negative narinfo lookups never leak between tests. */
export async function nixTestEnv(parent: string): Promise<NodeJS.ProcessEnv> {
  return { ...process.env, XDG_CACHE_HOME: await mkdtemp(path.join(parent, "xdg-cache-")) };
}

export async function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { ...options, maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new Error(`${command} not found — install Nix (Debian: apt-get install -y nix-bin)`);
    throw new Error(`${command} ${args.join(" ")} failed: ${e.stderr ?? e.message}`);
  }
}

export const NIX = ["--extra-experimental-features", "nix-command"];
export const OFFLINE = ["--option", "substituters", ""];

/** A key pair made by `nix-store --generate-binary-cache-key`: the files and their text. */
export async function nixKeyPair(dir: string, name: string): Promise<{ secretFile: string; publicFile: string; secret: string; public: string }> {
  const secretFile = path.join(dir, `${name}.sk`);
  const publicFile = path.join(dir, `${name}.pk`);
  await run("nix-store", ["--generate-binary-cache-key", name, secretFile, publicFile]);
  return { secretFile, publicFile, secret: await readFile(secretFile, "utf8"), public: await readFile(publicFile, "utf8") };
}

export interface Built {
  drvPath: string;
  outPath: string;
  /** The dependency's output, in outPath's closure. */
  depOutPath: string;
}

/**
 * Instantiates and builds a two-derivation closure (`top` refers to `dep`). Each build appends
 * a line to `<markerDir>/<label>`, so a test can tell building from substituting.
 */
export async function buildPair(dir: string, label: string, markerDir: string, env?: NodeJS.ProcessEnv): Promise<Built> {
  const file = path.join(dir, `${label}.nix`);
  await writeFile(
    file,
    `let
      mk = name: script: derivation { name = "nimbus-cache-\${name}"; nonce = "${NONCE}-${label}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
      dep = mk "${label}-dep" "echo built-dep >> ${markerDir}/${label}-dep; echo dep > $out";
    in mk "${label}" "echo built >> ${markerDir}/${label}; /bin/mkdir $out; echo \${dep} > $out/ref; echo hello > $out/hello"`,
  );
  const drvPath = (await run("nix-instantiate", [...OFFLINE, file], { env })).trim();
  const outPath = (await run("nix-store", [...OFFLINE, "--realise", drvPath], { env })).trim();
  const refs = (await run("nix-store", ["--query", "--references", outPath], { env })).trim().split("\n");
  return { drvPath, outPath, depOutPath: refs.find((r) => r.endsWith(`-nimbus-cache-${label}-dep`))! };
}

/** A directory every builder may write to (builders run as the nixbld users), for build markers. */
export async function markerDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-cache-markers-"));
  await chmod(dir, 0o1777);
  return dir;
}

/** How many times `label` was built (lines in its marker file). */
export async function buildCount(markers: string, label: string): Promise<number> {
  try {
    return (await readFile(path.join(markers, label), "utf8")).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

export async function tmpRoot(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "nimbus-cache-test-"));
}
