/**
 * Builds the dashboard: esbuild bundles src/main.tsx (and the CSS it imports) into
 * content-hashed files under dist/assets, then writes dist/index.html naming them. Hashed names
 * never collide, so a build can write beside a server reading the previous one; index.html is
 * replaced last, in one rename.
 */
import { readdir, rename, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { Metafile } from "esbuild";

export const dashboardRoot = fileURLToPath(new URL("..", import.meta.url));
export const defaultDistDir = join(dashboardRoot, "dist");
const sourceDir = join(dashboardRoot, "src");
/** The API schemas are bundled in from @nimbus/protocol: a change there is a change here. */
const protocolSourceDir = fileURLToPath(new URL("../../protocol/src", import.meta.url));

/** Old assets of earlier builds are removed once this old (a concurrent build's are newer). */
const PRUNE_AFTER_MS = 60_000;

export interface BuildSummary {
  outDir: string;
  /** Paths relative to outDir, with their sizes in bytes. */
  files: Record<string, number>;
}

export class DashboardBuildError extends Error {
  override name = "DashboardBuildError";
}

export async function buildDashboard(outDir: string = defaultDistDir): Promise<BuildSummary> {
  await mkdir(join(outDir, "assets"), { recursive: true });
  // Loaded here, not at import: the CLI imports the local stack (and so this file) for every command.
  const { build } = await import("esbuild");
  let metafile: Metafile;
  try {
    ({ metafile } = await build({
      entryPoints: [join(sourceDir, "main.tsx")],
      bundle: true,
      format: "esm",
      platform: "browser",
      // Evergreen browsers of the last two years; no polyfills.
      target: ["chrome115", "firefox115", "safari16.4"],
      jsx: "automatic",
      jsxImportSource: "preact",
      minify: true,
      sourcemap: "linked",
      legalComments: "none",
      entryNames: "assets/[name]-[hash]",
      assetNames: "assets/[name]-[hash]",
      outdir: outDir,
      metafile: true,
      logLevel: "silent",
    }));
  } catch (error) {
    throw new DashboardBuildError(`the dashboard did not build: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  const outputs = Object.entries(metafile.outputs).map(([path, output]) => ({ file: relative(outDir, path), output }));
  const entry = outputs.find(({ output }) => output.entryPoint !== undefined);
  if (!entry) throw new DashboardBuildError("the dashboard build produced no entry script");
  const css = entry.output.cssBundle ? relative(outDir, entry.output.cssBundle) : undefined;

  const indexTemporary = join(outDir, `.index.html.${process.pid}`);
  await writeFile(indexTemporary, indexHtml(entry.file, css));
  await rename(indexTemporary, join(outDir, "index.html"));

  const current = new Set(outputs.map(({ file }) => file));
  await pruneAssets(outDir, current);
  const files: Record<string, number> = { "index.html": (await stat(join(outDir, "index.html"))).size };
  for (const { file, output } of outputs) files[file] = output.bytes;
  return { outDir, files };
}

/** The one HTML page: every route of the app is this page (docs/dashboard-api.md, "Serving"). */
function indexHtml(script: string, css: string | undefined): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Nimbus</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='%230b57d0'/%3E%3C/svg%3E">
${css ? `<link rel="stylesheet" href="/${css}">\n` : ""}<script type="module" src="/${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The Nimbus dashboard needs JavaScript; the <code>nimbus</code> CLI shows the same.</noscript>
</body>
</html>
`;
}

async function pruneAssets(outDir: string, keep: Set<string>): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(join(outDir, "assets"))) {
    const file = `assets/${name}`;
    if (keep.has(file)) continue;
    const path = join(outDir, file);
    const { mtimeMs } = await stat(path).catch(() => ({ mtimeMs: now }));
    if (now - mtimeMs > PRUNE_AFTER_MS) await rm(path, { force: true });
  }
}

/** Whether dist/index.html is missing or older than any source the bundle is made from. */
export async function dashboardIsStale(outDir: string = defaultDistDir): Promise<boolean> {
  const built = await stat(join(outDir, "index.html")).then(
    (s) => s.mtimeMs,
    () => undefined,
  );
  if (built === undefined) return true;
  const sources = [sourceDir, protocolSourceDir, fileURLToPath(import.meta.url)];
  for (const source of sources) if ((await newestModification(source)) > built) return true;
  return false;
}

async function newestModification(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of await readdir(path, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || basename(entry.name).startsWith(".")) continue;
    newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

/** Builds when sources changed since the last build (a checkout, an edit); cheap when nothing did. */
export async function ensureDashboardBuilt(outDir: string = defaultDistDir): Promise<string> {
  if (await dashboardIsStale(outDir)) await buildDashboard(outDir);
  return outDir;
}
