/**
 * Bundles the `nimbus` CLI into one JavaScript file, dist/nimbus.js, with everything it needs
 * (the agent, the protocol, ws, zod, smol-toml, commander) inlined: the package `npm pack`
 * makes of packages/cli has no dependencies and needs no TypeScript loader (docs/agent.md,
 * "Installing on a build machine"). The local stack is left out: `nimbus dev` loads it from
 * a checkout of the repository.
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

await build({
  absWorkingDir: root,
  entryPoints: ["src/main.ts"],
  outfile: "dist/nimbus.js",
  bundle: true,
  platform: "node",
  target: "node22",
  format: "esm",
  // Only in a checkout (`nimbus dev`); ws's optional native helpers are never installed.
  external: ["@nimbus/local", "bufferutil", "utf-8-validate"],
  // The inlined CommonJS packages (ws, commander) call require() for Node's own modules.
  banner: { js: 'import { createRequire as __nimbusCreateRequire } from "node:module"; const require = __nimbusCreateRequire(import.meta.url);' },
  legalComments: "linked",
  logLevel: "warning",
});
