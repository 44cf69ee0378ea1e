import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { agentSocket, httpApi, schedules } from "@nimbus/service/resource-specs";
import { HandlerInvoker } from "../src/handlers.ts";
import { HandlerResolutionError, importHandlerFrom, parseHandlerSpec, repoRoot } from "../src/index.ts";

const fixturesRoot = fileURLToPath(new URL("./fixtures/", import.meta.url));

test("repoRoot is the repository root", () => {
  assert.ok(existsSync(join(repoRoot, "packages", "service", "src", "platform", "resource-specs.ts")));
});

test("a spec splits at its last dot", () => {
  assert.deepEqual(parseHandlerSpec("functions/socket/connect.handler"), { file: "functions/socket/connect", exportName: "handler" });
  assert.throws(() => parseHandlerSpec("functions/socket/connect"), HandlerResolutionError);
  assert.throws(() => parseHandlerSpec("functions/api.v2/agents"), HandlerResolutionError);
});

test("every handler named in resource-specs.ts is a valid spec", () => {
  const specs = [
    ...Object.values(agentSocket.routes),
    ...httpApi.routes.map((route) => route.handler),
    ...Object.values(schedules).map((schedule) => schedule.handler),
  ];
  for (const spec of specs) assert.doesNotThrow(() => parseHandlerSpec(spec), spec);
});

test("the production resolver imports <root>/<path>.ts and takes the named export", async () => {
  const resolve = importHandlerFrom(fixturesRoot);
  const handler = await resolve("functions/echo.handler");
  assert.deepEqual(await handler({ a: 1 }, {} as never), { statusCode: 200, body: '{"a":1}' });
});

test("a missing file or export is a HandlerResolutionError naming the spec", async () => {
  const resolve = importHandlerFrom(fixturesRoot);
  await assert.rejects(resolve("functions/missing.handler"), (error: Error) =>
    error instanceof HandlerResolutionError && error.message.includes('"functions/missing.handler"'),
  );
  await assert.rejects(resolve("functions/echo.notAFunction"), /no exported function "notAFunction"/);
});

test("preload resolves each spec once up front; one that fails is logged and resolved again when called", async () => {
  const resolved: string[] = [];
  let broken = true;
  const invoker = new HandlerInvoker(async (spec) => {
    resolved.push(spec);
    if (spec === "functions/broken.handler" && broken) throw new Error("syntax error");
    return async () => spec;
  });
  const lines: string[] = [];
  await invoker.preload(["functions/a.handler", "functions/broken.handler", "functions/a.handler"], (line) => lines.push(line));
  assert.deepEqual(resolved, ["functions/a.handler", "functions/broken.handler"]);
  assert.deepEqual(lines, ["handler functions/broken.handler not loaded: Error: syntax error"]);
  assert.equal(await invoker.invoke("functions/a.handler", {}), "functions/a.handler");
  broken = false;
  assert.equal(await invoker.invoke("functions/broken.handler", {}), "functions/broken.handler");
  assert.deepEqual(resolved, ["functions/a.handler", "functions/broken.handler", "functions/broken.handler"], "a loaded handler is not resolved again");
});

test("drain waits for invocations started while it waits, and says whether any is left at its deadline", async () => {
  const releases: Array<() => void> = [];
  const invoker = new HandlerInvoker(async (spec) => async () => {
    await new Promise<void>((resolve) => releases.push(resolve));
    // The first invocation starts another as it ends (as a follow-up would).
    if (spec === "functions/first.handler") void invoker.invoke("functions/second.handler", {});
  });
  assert.equal(await invoker.drain(0), true, "nothing runs");
  void invoker.invoke("functions/first.handler", {});
  const drained = invoker.drain(10_000);
  let done = false;
  void drained.then(() => (done = true));
  while (releases.length < 1) await new Promise((r) => setImmediate(r));
  releases[0]!();
  while (releases.length < 2) await new Promise((r) => setImmediate(r));
  assert.equal(done, false, "the second invocation still runs");
  releases[1]!();
  assert.equal(await drained, true);
  void invoker.invoke("functions/stuck.handler", {});
  assert.equal(await invoker.drain(10), false, "one is left at the deadline");
  while (releases.length < 3) await new Promise((r) => setImmediate(r));
  releases[2]!();
});
