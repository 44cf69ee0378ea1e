import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A git repository made by a test, with one commit of `files`; returns its path and commit. */
export async function makeGitRepo(name: string, files: Record<string, string>): Promise<{ path: string; commit: string }> {
  const path = join(await mkdtemp(join(tmpdir(), "nimbus-repo-")), name);
  execFileSync("git", ["init", "-q", "-b", "main", path]);
  for (const [file, text] of Object.entries(files)) await writeFile(join(path, file), text);
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", path, "-c", "user.name=Nimbus Test", "-c", "user.email=test@nimbus.invalid", ...args], { encoding: "utf8" });
  git("add", "-A");
  git("commit", "-q", "-m", "test commit");
  return { path, commit: git("rev-parse", "HEAD").trim() };
}
