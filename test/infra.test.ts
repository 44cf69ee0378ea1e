/**
 * Offline checks of what `sst deploy` would ship, without an AWS account:
 *  - every handler named in packages/service/src/platform/resource-specs.ts bundles the way SST bundles it
 *    for Lambda and the bundle exports the named function;
 *  - resource-specs.ts stays plain data (sst.config.ts imports it at deploy time);
 *  - sst.config.ts declares what resource-specs.ts says (its run() against recording SST globals):
 *    each table with its keys and indexes, each queue with its kind and consumer, every function
 *    linked to the tables and queues;
 * (sst.config.ts's type-check against the platform types `sst install` generates is
 * test/infra-typecheck.test.ts: its install, from the npm registry on a fresh clone, runs beside these.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BuildOptions, Metafile } from "esbuild";
import {
  agentSocket,
  buildQueuePrefix,
  deployEnvironmentNames,
  handlerSecrets,
  httpApi,
  queues,
  schedules,
  secrets,
  tables,
  type QueueSpec,
  type TableSpec,
} from "../packages/service/src/platform/resource-specs.ts";
import { TIMING_ENV } from "../packages/service/src/platform/timing.ts";
import { output, run } from "./support/run-command.ts";
import { declaredInAws, resolved, type Declaration } from "./support/sst-recorder.ts";

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
    ...Object.entries<QueueSpec>(queues).flatMap(([name, { consumer }]) => (consumer ? [{ handler: consumer.handler, usedBy: `queue ${name}` }] : [])),
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

/** The routes that answer without a credential. */
// Answered whoever asks: the service's own description, the cache's, and the dashboard's session
// (none is an answer too) and sign-out (harmless without a session).
const PUBLIC_ROUTES = ["GET /api/service-info", "GET /cache/nix-cache-info", "GET /api/dashboard/session", "POST /api/dashboard/sign-out"];
/** Routes whose credential is in the body: the probe sends a wrong one there. */
const PROBE_BODIES: Record<string, string> = { "POST /api/dashboard/sign-in": JSON.stringify({ token: "not-the-token-but-long-enough" }) };

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
  for (const name of Object.keys(queues)) env[`SST_RESOURCE_${name}`] = JSON.stringify({ url: `https://sqs.example.invalid/${name}` });
  return env;
}


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

  // What SST's node runtime does for a deployed function (minify off to read failures).
  const lambdaOptions = {
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
  } satisfies BuildOptions;
  // Every handler in one esbuild run: without code splitting each entry point still gets a
  // bundle of its own, the same as SST's build of that function alone, while the modules they
  // share are parsed once. If that run fails, each handler is built alone below, to name it.
  const sources = handlers.map(({ handler }) => findSource(splitHandler(handler).base)).filter((s): s is string => s !== undefined);
  const together = await build({ ...lambdaOptions, entryPoints: sources, outdir: outRoot, outbase: root }).catch(() => undefined);
  const outputOf = (result: { metafile: Metafile }, source: string) =>
    Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === relative(root, source)) as [string, Metafile["outputs"][string]] | undefined;

  for (const { handler, usedBy } of handlers) {
    await t.test(`${handler} (${usedBy})`, async () => {
      const { base, exportName } = splitHandler(handler);
      const source = findSource(base);
      assert.ok(source, `${usedBy} names ${handler}, but there is no ${base}.ts (or .mts/.js/.mjs)`);

      const built = (together && outputOf(together, source)) ?? outputOf(await build({ ...lambdaOptions, entryPoints: [source], outdir: join(outRoot, "alone", base) }), source);
      assert.ok(built, `esbuild gave no bundle for ${relative(root, source)}`);
      const [outFile, meta] = built;
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
      // An HTTP route's handler, given only the secrets its route links (sst.config.ts links no
      // others), still checks a request's credentials: a wrong token or signature gets 401, not
      // a 500 from reading a secret it was not linked to. Only the public routes answer 200.
      // One process per handler loads the bundle and, for a route, calls it: loading it with
      // fewer secrets linked proves as much as loading it with all.
      const route = httpApi.routes.find((r) => r.handler === handler);
      const href = JSON.stringify(pathToFileURL(bundle).href);
      const fn = `m[${JSON.stringify(exportName)}]`;
      const probe = `const m = await import(${href}); process.stdout.write(typeof ${fn});`;
      if (!route) {
        const loaded = await run(process.execPath, ["--input-type=module", "-e", probe], { env, timeoutMs: 30_000 });
        assert.equal(loaded.code, 0, `importing the ${handler} bundle failed:\n${output(loaded)}`);
        assert.equal(loaded.stdout, "function", `${handler}: "${exportName}" is a ${loaded.stdout}, not a function`);
        return;
      }
      const [routeMethod, routePath] = route.route.split(" ") as [string, string];
      const method = routeMethod === "ANY" ? "GET" : routeMethod;
      // A plausible value for each path parameter, so a handler gets as far as the credential check.
      const sample = (name: string) => (name === "file" ? (routePath.includes("/nar/") ? `${"0".repeat(52)}.nar` : `${"0".repeat(32)}.narinfo`) : "probe");
      const pathParameters = Object.fromEntries([...routePath.matchAll(/\{(\w+)\}/g)].map(([, name]) => [name!, sample(name!)]));
      const rawPath = routePath.replace(/\{(\w+)\}/g, (_, name: string) => sample(name));
      const request = {
        version: "2.0",
        routeKey: route.route,
        rawPath,
        rawQueryString: "",
        headers: {
          authorization: "Bearer not-the-token",
          "content-type": "application/json",
          "x-github-event": "push",
          "x-github-delivery": "probe",
          "x-hub-signature-256": `sha256=${"0".repeat(64)}`,
        },
        body: PROBE_BODIES[route.route] ?? "{}",
        isBase64Encoded: false,
        pathParameters,
        requestContext: { requestId: "probe", routeKey: route.route, http: { method, path: rawPath } },
      };
      const call = `${probe} if (typeof ${fn} === "function") { const r = await ${fn}(${JSON.stringify(request)}); process.stdout.write(" " + String(r.statusCode)); }`;
      const linked: readonly string[] = handlerSecrets(handler);
      const unlinked = new Set(secrets.filter((name) => !linked.includes(name)).map((name) => `SST_RESOURCE_${name}`));
      const linkedOnly = Object.fromEntries(Object.entries(env).filter(([name]) => !unlinked.has(name)));
      const answered = await run(process.execPath, ["--input-type=module", "-e", call], { env: linkedOnly, timeoutMs: 30_000 });
      const [kind = "", status = ""] = answered.stdout.split(" ");
      assert.equal(kind, "function", `${handler} with only ${JSON.stringify(linked)} linked: "${exportName}" is ${kind ? `a ${kind}, not a function` : "not loaded"}:\n${output(answered)}`);
      const expected = PUBLIC_ROUTES.includes(route.route) ? "200" : "401";
      assert.equal(status, expected, `${handler} with only ${JSON.stringify(linked)} linked answered ${status || "nothing"}:\n${output(answered)}`);
    });
  }
});

/** SST's duration strings as sst.config.ts writes them ("30 seconds"). */
function seconds(duration: string | undefined): number {
  const match = /^(\d+) seconds?$/.exec(duration ?? "");
  assert.ok(match, `expected a duration in seconds, got ${String(duration)}`);
  return Number(match[1]);
}

function declaredQueue(declared: Declaration, name: string) {
  const found = declared.resources.filter((r) => r.kind === "aws.Queue" && r.name === name);
  assert.equal(found.length, 1, `sst.config.ts declares ${found.length} queues named ${name}`);
  return found[0]!;
}

test("sst.config.ts declares each queue of resource-specs.ts; a queue with a consumer is subscribed with partial batch responses", async () => {
  const declared = await declaredInAws(root);
  assert.deepEqual(
    declared.resources.filter((r) => r.kind === "aws.Queue").map((r) => r.name).sort(),
    Object.keys(queues).sort(),
    "the queues sst.config.ts declares are exactly those of resource-specs.ts",
  );
  // The disconnect check waits out the grace as a per-message DelaySeconds, which SQS allows
  // only on a standard queue (a FIFO queue refuses the send).
  assert.equal(queues.DisconnectChecks.fifo, false, "DisconnectChecks must be a standard queue: its messages carry their own delay");
  // Effects of one line run in job order: one message group per line, which only FIFO keeps (docs/effects.md).
  assert.equal(queues.EffectQueue.fifo, true, "EffectQueue must be a FIFO queue: a line's effects keep their order");

  for (const [name, spec] of Object.entries<QueueSpec>(queues)) {
    const queue = declaredQueue(declared, name);
    assert.equal(queue.args?.fifo, spec.fifo, `${name}: fifo`);
    assert.equal(seconds(queue.args?.visibilityTimeout as string), spec.visibilityTimeoutSeconds, `${name}: visibility timeout`);
    // A queue-wide delay would hold every message, whatever delay the sender chose.
    assert.ok(queue.args?.delay === undefined || seconds(queue.args.delay as string) === 0, `${name}: no queue-wide delay`);

    const subscriptions = declared.subscriptions.filter((s) => s.queue === queue);
    if (!spec.consumer) {
      assert.equal(subscriptions.length, 0, `${name} has no consumer in resource-specs.ts, but sst.config.ts subscribes one`);
      continue;
    }
    assert.equal(subscriptions.length, 1, `${name}: one subscriber (SQS event source) for its consumer`);
    const [{ function: fn, args }] = subscriptions as [(typeof subscriptions)[number]];
    assert.equal(fn.handler, spec.consumer.handler, `${name}: the consumer's handler`);
    const batch = resolved(args?.batch) as NonNullable<NonNullable<typeof args>["batch"]> | undefined;
    assert.equal(batch?.size, spec.consumer.batchSize, `${name}: batch size`);
    // Without it, one failed check would bring back the whole batch (handled again) or none.
    assert.equal(batch?.partialResponses, true, `${name}: the consumer answers batchItemFailures, so partial responses must be on`);
    // A batching window would add up to its length to every check's delay.
    assert.ok(batch?.window === undefined || seconds(batch.window) === 0, `${name}: no batching window`);
    // Lambda refuses an SQS event source whose queue hides messages for less than the function may run.
    assert.ok(seconds(fn.timeout) < spec.visibilityTimeoutSeconds, `${name}: consumer timeout ${fn.timeout} must be under the visibility timeout`);
    assert.ok(fn.link.includes(declared.instanceOf(queue)), `${name}: the consumer is linked to its queue`);
  }
});

test("sst.config.ts declares each table of resource-specs.ts with its keys, indexes and expiry", async () => {
  const declared = await declaredInAws(root);
  const dynamos = declared.resources.filter((r) => r.kind === "aws.Dynamo");
  assert.deepEqual(dynamos.map((r) => r.name).sort(), Object.keys(tables).sort(), "the tables sst.config.ts declares are exactly those of resource-specs.ts");
  // The tables each branch added, named so that losing one in a merge fails here, not in AWS.
  for (const name of ["DerivationInputs", "PendingInputs", "Effects", "EffectLines", "Schedules", "CachePaths", "AgentClasses"]) {
    assert.ok(dynamos.some((r) => r.name === name), `sst.config.ts declares no table ${name}`);
  }
  for (const [name, spec] of Object.entries<TableSpec>(tables)) {
    const args = dynamos.find((r) => r.name === name)!.args;
    assert.deepEqual(args?.fields, spec.fields, `${name}: fields`);
    assert.deepEqual(args?.primaryIndex, spec.primaryIndex, `${name}: primary index`);
    assert.deepEqual(args?.globalIndexes, spec.globalIndexes, `${name}: global indexes (the sweeper's sparse ones among them)`);
    assert.equal(args?.ttl, spec.ttl, `${name}: ttl`);
  }
});

test("every function sst.config.ts declares is linked to every table and queue and only its own secrets, and keeps a subscriber's own SQS grant", async () => {
  const declared = await declaredInAws(root);
  assert.deepEqual(
    declared.functions.map((f) => f.handler).sort(),
    declaredHandlers().map((h) => h.handler).sort(),
    "sst.config.ts declares one function per handler resource-specs.ts names",
  );
  // Any handler may find a connection gone and schedule its disconnect check, or queue work;
  // the built-in cache's handlers presign its bucket.
  const shared = declared.resources.filter((r) => r.kind === "aws.Dynamo" || r.kind === "aws.Queue" || r.kind === "aws.Bucket");
  for (const fn of declared.functions) {
    for (const resource of shared) {
      assert.ok(fn.link.includes(declared.instanceOf(resource)), `${fn.usedBy} (${fn.handler}) is not linked to ${resource.kind} ${resource.name}`);
    }
    const linkedSecrets = declared.resources.filter((r) => r.kind === "Secret" && fn.link.includes(declared.instanceOf(r))).map((r) => r.name);
    assert.deepEqual(linkedSecrets.sort(), handlerSecrets(fn.handler).sort(), `${fn.usedBy} (${fn.handler}): linked secrets`);
  }

  // SST gives a queue's subscriber its receive/delete grant through `permissions`; the global
  // function transform adds the build queues' grant to it rather than replacing it.
  const subscriberGrant = { actions: ["sqs:ReceiveMessage", "sqs:DeleteMessage"], resources: ["arn:aws:sqs:us-east-1:1:nimbus-ci-DisconnectChecks"] };
  const permissions = declared.transformFunction({ handler: "x.handler", permissions: [subscriberGrant] }).permissions as { resources: string[] }[];
  assert.ok(permissions.includes(subscriberGrant), "the $transform for sst.aws.Function drops the permissions a function already has");
  assert.ok(
    permissions.some((p) => p.resources.includes(`arn:aws:sqs:*:*:${buildQueuePrefix("nimbus", "ci")}*`)),
    "the $transform for sst.aws.Function must grant the build queues",
  );
});

test("the timing knobs set in the shell that deploys reach every function", async (t) => {
  // Every knob platform/timing.ts reads can be set for a deployed stack (docs/reliability.md).
  for (const name of Object.values(TIMING_ENV)) {
    assert.ok((deployEnvironmentNames as readonly string[]).includes(name), `${name} is not passed by sst.config.ts (deployEnvironmentNames)`);
  }
  const saved = process.env.NIMBUS_DISCONNECT_GRACE_MS;
  t.after(() => {
    if (saved === undefined) delete process.env.NIMBUS_DISCONNECT_GRACE_MS;
    else process.env.NIMBUS_DISCONNECT_GRACE_MS = saved;
  });
  process.env.NIMBUS_DISCONNECT_GRACE_MS = "25000";
  const declared = await declaredInAws(root);
  const environment = declared.transformFunction({ handler: "x.handler", environment: { OWN: "1" } }).environment as Record<string, string>;
  assert.equal(environment.NIMBUS_DISCONNECT_GRACE_MS, "25000");
  assert.equal(environment.OWN, "1", "a function's own environment is kept");
  assert.ok(!("NIMBUS_SESSION_GRACE_MS" in environment) || process.env.NIMBUS_SESSION_GRACE_MS !== undefined, "a knob not set is not passed");
});
