/**
 * A file:// cache: one directory listing answers for every path. A directory that does not
 * exist yet is an empty cache (`nix copy` creates it on the first push).
 */
import { readdir } from "node:fs/promises";
import { CacheUnreachableError } from "./errors.ts";
import { type CachePresence, type MissingResult, pathsByHash } from "./presence.ts";

export function filePresence(cache: string, directory: string): CachePresence {
  return {
    cache,
    async missing(storePaths): Promise<MissingResult> {
      const byHash = pathsByHash(storePaths);
      let names: string[];
      try {
        names = await readdir(directory);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return { missing: new Set(byHash.values()), failed: new Map() };
        throw new CacheUnreachableError(cache, `${directory} cannot be listed (${code})`);
      }
      const present = new Set(names.filter((n) => n.endsWith(".narinfo")).map((n) => n.slice(0, -".narinfo".length)));
      const missing = new Set<string>();
      for (const [hash, storePath] of byHash) if (!present.has(hash)) missing.add(storePath);
      return { missing, failed: new Map() };
    },
  };
}
