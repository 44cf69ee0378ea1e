/**
 * sst.config.ts type-checks against the platform types `sst install` generates (.sst/platform).
 * Apart from test/infra.test.ts's other offline checks: on a fresh clone the install fetches
 * SST's platform dependencies from the npm registry (one to three minutes in CI), and in a file
 * of its own that runs beside them rather than before them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { output, run } from "./support/run-command.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

test(
  "sst.config.ts type-checks offline against the generated SST platform types",
  { timeout: 300_000 },
  async () => {
    const sstCli = join(root, "node_modules/sst/bin/sst.mjs");
    const sstBinary = `sst-${process.platform}-${process.arch}`;
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    assert.ok(existsSync(sstCli), "the `sst` package is not installed: run `npm ci` at the repository root");
    assert.ok(
      existsSync(join(root, "node_modules", sstBinary)),
      `the SST CLI binary package "${sstBinary}" is not installed (an optional dependency of sst): run \`npm ci\``,
    );
    assert.ok(existsSync(tsc), "typescript is not installed: run `npm ci` at the repository root");

    // `sst install` writes .sst/platform (the $config/sst/$transform globals and their npm deps,
    // fetched from the npm registry with npm, not bun). Cached after the first run (~1 s).
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: [dirname(process.execPath), process.env.PATH].join(delimiter), // npm of this same node
      SST_SKIP_DEPENDENCY_CHECK: "1",
      SST_NO_BUN: "1",
      SST_TELEMETRY_DISABLED: "1",
    };
    const install = await run(process.execPath, [sstCli, "install", "--stage", "ci"], { env, timeoutMs: 240_000 });
    assert.equal(
      install.code,
      0,
      `\`sst install --stage ci\` failed (it needs the npm registry and npm on PATH):\n${output(install)}`,
    );
    assert.ok(existsSync(join(root, ".sst/platform/config.d.ts")), "`sst install` did not write .sst/platform/config.d.ts");

    const check = await run(process.execPath, [tsc, "--noEmit", "-p", join(root, "infra/tsconfig.json")], {
      timeoutMs: 120_000,
    });
    assert.equal(check.code, 0, `sst.config.ts does not type-check:\n${output(check)}`);
  },
);
