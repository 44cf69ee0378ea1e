/**
 * Pushing to a NixCache with Nix itself: `nix copy --no-recursive --to '<uri>?secret-key=<file>'`,
 * which signs each narinfo as it uploads. Paths are given in reference order, `.drv` files with
 * `--derivation` and everything else without it: in Nix 2.8 a `.drv` argument alone means its
 * outputs, and with `--derivation` an output path means its deriver.
 */
import type { NixCacheConfig } from "./binary-caches.ts";
import { CachePushError } from "./errors.ts";
import { argumentChunks, NixCommandError, type NixRunOptions, runNix } from "./nix-process.ts";
import { withPrivateFile } from "./private-file.ts";
import { withStoreParam } from "./store-uri.ts";

export interface NixCopyOptions extends NixRunOptions {
  /** Extra `--option NAME VALUE` arguments (netrc-file for authenticated HTTP caches…). */
  nixArgs?: readonly string[];
  /** Where the signing key's temporary file goes (a private directory of the agent). */
  privateDir?: string;
}

/** Uploads `paths` (already ordered references first); throws CachePushError naming the cache. */
export async function nixCopyPush(cache: NixCacheConfig, paths: readonly string[], options: NixCopyOptions = {}): Promise<void> {
  if (paths.length === 0) return;
  if (cache.signingKey === undefined) throw new CachePushError(cache.name, "it has no signing key, so what Nimbus pushes would be refused by every reader");
  const others = paths.filter((p) => !p.endsWith(".drv"));
  const derivations = paths.filter((p) => p.endsWith(".drv"));
  await withPrivateFile(
    `${cache.signingKey.text}\n`,
    async (keyFile) => {
      const to = withStoreParam(cache.store.uri, "secret-key", keyFile);
      const copy = async (list: string[], extra: string[]) => {
        for (const part of argumentChunks(list)) {
          try {
            await runNix("nix", ["--extra-experimental-features", "nix-command", "copy", ...(options.nixArgs ?? []), "--no-recursive", ...extra, "--to", to, ...part], options);
          } catch (err) {
            if (err instanceof NixCommandError) throw new CachePushError(cache.name, err.message.split(keyFile).join("<signing key>"));
            throw err;
          }
        }
      };
      await copy(others, []);
      await copy(derivations, ["--derivation"]);
    },
    options.privateDir,
  );
}
