/**
 * Secrets Nix must read from a file (a signing key for `?secret-key=`): written 0600 in a
 * fresh 0700 directory with a random name, under a directory the agent keeps private (never
 * a checkout or anything evaluated code can name), and removed as soon as the command ends.
 * Builders run as other users (nixbld), so the modes alone keep them out.
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export async function withPrivateFile<T>(contents: string, fn: (file: string) => Promise<T>, parentDir = os.tmpdir()): Promise<T> {
  const dir = await mkdtemp(path.join(parentDir, "nimbus-secret-"));
  try {
    await chmod(dir, 0o700);
    const file = path.join(dir, "key");
    await writeFile(file, contents, { mode: 0o600 });
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
