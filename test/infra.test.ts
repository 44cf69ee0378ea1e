/**
 * Offline checks of what `sst deploy` would ship, without an AWS account:
 *  - every handler named in packages/service/src/platform/resource-specs.ts bundles the way SST bundles it
 *    for Lambda and the bundle exports the named function;
 *  - resource-specs.ts stays plain data (sst.config.ts imports it at deploy time);
 *  - sst.config.ts type-checks against the platform types `sst install` generates.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BuildOptions, Metafile } from "esbuild";
import { agentSocket, handlerSecrets, httpApi, schedules, secrets, tables } from "../packages/service/src/platform/resource-specs.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const resourcesFile = join(root, "packages/service/src/platform/resource-specs.ts");

/** The banner SST puts on ESM Lambda bundles, so CommonJS dependencies can still `require`. */
const sstEsmBanner = [
  `import { createRequire as topLevelCreateRequire } from 'module';`,
  `const require = topLevelCreateRequire(import.meta.url);`,
  `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
  `const __filename = topLevelFileUrlToPath(import.meta.url)`,
  `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
].join("\n");

/** Every `file.export` handler string resource-specs.ts names, each once, with where it is used. */
function declaredHandlers(): { handler: string; usedBy: string }[] {
  const all = [
    ...Object.entries(agentSocket.routes).map(([route, handler]) => ({ handler, usedBy: `${agentSocket.name} ${route}` })),
    ...httpApi.routes.map(({ route, handler }) => ({ handler, usedBy: `${httpApi.name} ${route}` })),
    ...Object.entries(schedules).map(([name, { handler }]) => ({ handler, usedBy: `schedule ${name}` })),
  ];
  return [...new Map(all.map((h) => [h.handler, h])).values()];
}

/** SST's handler syntax: `path/to/file.exportName`, the file's extension left out. */
function splitHandler(handler: string): { base: string; exportName: string } {
  const dot = handler.lastIndexOf(".");
  assert.ok(dot > 0, `handler "${handler}" must look like "path/to/file.exportName"`);
  return { base: handler.slice(0, dot), exportName: handler.slice(dot + 1) };
}

function findSource(base: string): string | undefined {
  return [".ts", ".mts", ".js", ".mjs"].map((ext) => join(root, base + ext)).find((file) => existsSync(file));
}

async function loadEsbuild(): Promise<typeof import("esbuild")> {
  try {
    return await import("esbuild");
  } catch (err) {
    throw new Error(`esbuild is not installed: run \`npm ci\` at the repository root (${String(err)})`);
  }
}

/** Imports a path the bundle still imports at run time must resolve inside the Lambda runtime. */
const isNodeBuiltin = (path: string) => path.startsWith("node:") || builtinModules.includes(path.split("/")[0]!);

/** Fake linked resources, shaped like the `SST_RESOURCE_<Name>` variables SST sets in Lambda: every table and API, and `linkedSecrets`. */
function fakeResourceEnv(linkedSecrets: readonly string[] = secrets): Record<string, string> {
  const env: Record<string, string> = {
    SST_RESOURCE_App: JSON.stringify({ name: "nimbus", stage: "ci" }),
    [`SST_RESOURCE_${agentSocket.name}`]: JSON.stringify({
      url: "wss://example.invalid/ci",
      managementEndpoint: "https://example.invalid/ci",
    }),
    [`SST_RESOURCE_${httpApi.name}`]: JSON.stringify({ url: "https://example.invalid" }),
  };
  for (const name of Object.keys(tables)) env[`SST_RESOURCE_${name}`] = JSON.stringify({ name: `nimbus-ci-${name}` });
  for (const name of linkedSecrets) env[`SST_RESOURCE_${name}`] = JSON.stringify({ value: "offline-test-secret" });
  return env;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: root, env: options.env ?? process.env, timeout: options.timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

const output = (r: Run) => `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-40).join("\n");

test("resource-specs.ts stays plain data: bundling it pulls in no other module", async () => {
  const { build } = await loadEsbuild();
  const result = await build({
    entryPoints: [resourcesFile],
    bundle: true,
    write: false,
    metafile: true,
    platform: "node",
    format: "esm",
    logLevel: "silent",
    absWorkingDir: root,
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.deepEqual(inputs, ["packages/service/src/platform/resource-specs.ts"], `sst.config.ts imports resource-specs.ts, so it must import nothing (found ${inputs.join(", ")})`);
});

test("every handler named in resource-specs.ts bundles for Lambda (node22, ESM) and exports its function", async (t) => {
  const { build } = await loadEsbuild();
  const outRoot = await mkdtemp(join(tmpdir(), "nimbus-lambda-"));
  t.after(() => rm(outRoot, { recursive: true, force: true }));
  const handlers = declaredHandlers();
  assert.ok(handlers.length > 0, "resource-specs.ts names no handler");

  for (const { handler, usedBy } of handlers) {
    await t.test(`${handler} (${usedBy})`, async () => {
      const { base, exportName } = splitHandler(handler);
      const source = findSource(base);
      assert.ok(source, `${usedBy} names ${handler}, but there is no ${base}.ts (or .mts/.js/.mjs)`);

      // What SST's node runtime does for a deployed function (minify off to read failures).
      const outdir = join(outRoot, base);
      const options: BuildOptions & { metafile: true } = {
        entryPoints: [source],
        outdir,
        bundle: true,
        platform: "node",
        target: "node22",
        format: "esm",
        minify: false,
        outExtension: { ".js": ".mjs" },
        mainFields: ["module", "main"],
        banner: { js: sstEsmBanner },
        metafile: true,
        logLevel: "silent",
        absWorkingDir: root,
      };
      const result = await build(options);
      const [outFile, meta] = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint) as [
        string,
        Metafile["outputs"][string],
      ];
      const bundle = join(root, outFile);
      assert.ok((await stat(bundle)).size > 0, `empty bundle for ${handler}`);
      assert.ok(
        meta.exports.includes(exportName),
        `${relative(root, source)} must export "${exportName}" (exports: ${meta.exports.join(", ") || "none"})`,
      );
      // The Lambda zip holds only this file: anything left unbundled must ship with Node itself.
      const leftOver = meta.imports.filter((i) => i.external && !isNodeBuiltin(i.path)).map((i) => i.path);
      assert.deepEqual(leftOver, [], `${handler}: imports left outside the bundle`);

      // Load it the way Lambda does (a fresh ESM process), offline: fake region, credentials and
      // linked resources; endpoints point nowhere, so any network use at import time fails loudly.
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "offline",
        AWS_SECRET_ACCESS_KEY: "offline",
        AWS_EC2_METADATA_DISABLED: "true",
        AWS_ENDPOINT_URL: "http://127.0.0.1:9",
        ...fakeResourceEnv(),
      };
      const probe = `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); process.stdout.write(typeof m[${JSON.stringify(exportName)}]);`;
      const loaded = await run(process.execPath, ["--input-type=module", "-e", probe], { env, timeoutMs: 30_000 });
      assert.equal(loaded.code, 0, `importing the ${handler} bundle failed:\n${output(loaded)}`);
      assert.equal(loaded.stdout, "function", `${handler}: "${exportName}" is a ${loaded.stdout}, not a function`);

      // An HTTP route's handler, given only the secrets its route links (sst.config.ts links no
      // others), still checks a request's credentials: a wrong token or signature gets 401, not
      // a 500 from reading a secret it was not linked to.
      const route = httpApi.routes.find((r) => r.handler === handler);
      if (!route) return;
      const request = {
        version: "2.0",
        routeKey: route.route,
        rawPath: "/probe",
        rawQueryString: "",
        headers: { authorization: "Bearer not-the-token", "x-github-event": "push", "x-github-delivery": "probe", "x-hub-signature-256": `sha256=${"0".repeat(64)}` },
        body: "{}",
        isBase64Encoded: false,
        requestContext: { requestId: "probe", routeKey: route.route, http: { method: route.route.split(" ")[0], path: "/probe" } },
      };
      const call = `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); const r = await m[${JSON.stringify(exportName)}](${JSON.stringify(request)}); process.stdout.write(String(r.statusCode));`;
      const linked: readonly string[] = handlerSecrets(handler);
      const unlinked = new Set(secrets.filter((name) => !linked.includes(name)).map((name) => `SST_RESOURCE_${name}`));
      const linkedOnly = Object.fromEntries(Object.entries(env).filter(([name]) => !unlinked.has(name)));
      const answered = await run(process.execPath, ["--input-type=module", "-e", call], { env: linkedOnly, timeoutMs: 30_000 });
      const expected = linked.length ? "401" : "200";
      assert.equal(answered.stdout, expected, `${handler} with only ${JSON.stringify(linked)} linked answered ${answered.stdout || "nothing"}:\n${output(answered)}`);
    });
  }
});

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
