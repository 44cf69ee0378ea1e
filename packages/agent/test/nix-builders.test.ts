import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readdir, rm } from "node:fs/promises";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { NixBuilders, type ServeBuildOptions } from "../src/nix-builders.ts";
import { classifyFailure } from "../src/tasks/build.ts";
import { alive, nixEval, PRELUDE, tmpRoot } from "./task-fixtures.ts";

const NO_LIMITS = { maxSilentTime: 0, buildTimeout: 0, maxLogSize: 0 };

/** The `nix-store` processes started while `run` runs (the builders spawn through node:child_process). */
async function spawned<T>(run: () => Promise<T>): Promise<{ value: T; children: ChildProcess[] }> {
  const childProcess = createRequire(import.meta.url)("node:child_process") as typeof import("node:child_process");
  const original = childProcess.spawn;
  children.length = 0;
  childProcess.spawn = ((command: string, args: readonly string[], options: object) => {
    const child = original(command, args, options);
    if (command === "nix-store") children.push(child);
    return child;
  }) as typeof original;
  syncBuiltinESMExports();
  try {
    return { value: await run(), children };
  } finally {
    childProcess.spawn = original;
    syncBuiltinESMExports();
  }
}

/** The processes `spawned` saw start, as they start. */
const children: ChildProcess[] = [];

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

let dir: string;
let drvs: Record<string, string>;

before(async () => {
  dir = await tmpRoot();
  drvs = await nixEval(
    `let ${PRELUDE} in builtins.mapAttrs (_: d: d.drvPath) {
      a = mk "serve-a" "echo building a; echo > $out";
      b = mk "serve-b" "echo building b >&2; echo > $out";
      c = mk "serve-c" "echo > $out";
      d = mk "serve-d" "echo > $out";
      e = mk "serve-e" "echo > $out";
      fails = mk "serve-fails" "echo about to fail; exit 3";
      silent = mk "serve-silent" "echo going quiet; /bin/sleep 5; echo > $out";
      sleeper = mk "serve-sleeper" "echo started $$; exec /bin/sleep 30";
    }`,
    dir,
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(lines: string[], extra: Partial<ServeBuildOptions> = {}): ServeBuildOptions {
  return { args: ["--option", "substituters", ""], env: process.env, signal: new AbortController().signal, onLine: (line) => lines.push(line), ...extra };
}

describe("builds through nix-store --serve --write", () => {
  it("builds one derivation after another in one process, each with its own log", async () => {
    const builders = new NixBuilders(`${dir}/pool-reuse`, NO_LIMITS);
    try {
      const a: string[] = [];
      const b: string[] = [];
      const { value, children } = await spawned(async () => [await builders.build(drvs.a!, options(a)), await builders.build(drvs.b!, options(b))]);
      assert.deepEqual(value.map((run) => run?.code), [0, 0]);
      assert.equal(children.length, 1, "one nix-store --serve for both builds");
      assert.deepEqual(a, ["building a"]);
      assert.deepEqual(b, ["building b"], "the builder's stderr too, and nothing of the build before");
    } finally {
      builders.close();
    }
  });

  it("answers a builder's failure as nix-store --realise would: exit status 100, Nix's error last in the log", async () => {
    const builders = new NixBuilders(`${dir}/pool-fails`, NO_LIMITS);
    try {
      const lines: string[] = [];
      const run = await builders.build(drvs.fails!, options(lines));
      assert.equal(run?.code, 100);
      assert.deepEqual(lines, ["about to fail", `error: builder for '${drvs.fails}' failed with exit code 3`]);
      assert.deepEqual(classifyFailure(drvs.fails!, run!.code, run!.signal, run!.stderr), {
        status: "failed",
        exitCode: 3,
        error: `error: builder for '${drvs.fails}' failed with exit code 3`,
      });
      // The process is not spoilt by a failure.
      assert.equal((await builders.build(drvs.c!, options([])))?.code, 0);
    } finally {
      builders.close();
    }
  });

  it("passes Nix's build limits: a builder silent longer than max-silent-time is stopped", async () => {
    const builders = new NixBuilders(`${dir}/pool-limits`, { ...NO_LIMITS, maxSilentTime: 1 });
    try {
      const lines: string[] = [];
      const run = await builders.build(drvs.silent!, options(lines));
      assert.equal(run?.code, 101, run?.stderr);
      assert.match(lines.at(-1) ?? "", /timed out after 1 seconds of silence/);
      assert.equal(classifyFailure(drvs.silent!, run!.code, run!.signal, run!.stderr).status, "failed");
    } finally {
      builders.close();
    }
  });

  it("stops a build when its signal aborts: the builder goes with its Nix, and the next build gets a new process", async () => {
    const builders = new NixBuilders(`${dir}/pool-abort`, NO_LIMITS);
    try {
      const controller = new AbortController();
      let pid: number | undefined;
      const { value, children } = await spawned(async () => {
        const running = builders.build(
          drvs.sleeper!,
          options([], {
            signal: controller.signal,
            onLine: (line) => {
              if (line.startsWith("started ")) {
                pid = Number(line.slice("started ".length));
                controller.abort();
              }
            },
          }),
        );
        const stopped = await running;
        return [stopped, await builders.build(drvs.d!, options([]))];
      });
      assert.equal(value[0]?.code, null, "stopped, as a killed nix-store --realise");
      assert.equal(value[1]?.code, 0);
      assert.equal(children.length, 2, "the stopped process is not reused");
      assert.ok(pid !== undefined);
      for (let i = 0; i < 100 && alive(pid!); i++) await sleep(30);
      assert.equal(alive(pid!), false, "the builder is gone");
    } finally {
      builders.close();
    }
  });

  it("retires a process after its builds or when idle, and starts another for other options", async () => {
    const builders = new NixBuilders(`${dir}/pool-retire`, NO_LIMITS, undefined, { buildsPerProcess: 2, idleMs: 300 });
    try {
      const { children } = await spawned(async () => {
        await builders.build(drvs.a!, options([]));
        await builders.build(drvs.b!, options([]));
        await builders.build(drvs.c!, options([]));
        await builders.build(drvs.d!, options([], { args: ["--option", "substituters", "", "--option", "max-jobs", "1"] }));
      });
      assert.equal(children.length, 3, "a third build after two, and other options, each start a process");
      for (let i = 0; i < 100 && !children.every(exited); i++) await sleep(30);
      assert.deepEqual(children.map(exited), [true, true, true], "retired after two builds, replaced for other options, then idle");
    } finally {
      builders.close();
    }
  });

  it("does not hand a build to an idle process someone else killed: it starts another", async () => {
    const builders = new NixBuilders(`${dir}/pool-killed`, NO_LIMITS);
    try {
      const { value, children: started } = await spawned(async () => {
        await builders.build(drvs.a!, options([]));
        const [first] = children;
        first!.kill("SIGKILL");
        for (let i = 0; i < 100 && !exited(first!); i++) await sleep(20);
        return builders.build(drvs.e!, options([]));
      });
      assert.equal(value?.code, 0, value?.stderr);
      assert.equal(started.length, 2);
    } finally {
      builders.close();
    }
  });

  it("removes at start the directories of processes whose agent is gone, and only those", async () => {
    const gone = spawn("/bin/true");
    await new Promise((resolve) => gone.on("exit", resolve));
    const root = `${dir}/pool-leftovers`;
    for (const name of [`serve-${gone.pid}-1`, `serve-${process.pid}-7`, `serve-${process.ppid}-2`, "other"]) await mkdir(`${root}/${name}`, { recursive: true });
    await new NixBuilders(root, NO_LIMITS).removeLeftovers();
    assert.deepEqual((await readdir(root)).sort(), ["other", `serve-${process.pid}-7`, `serve-${process.ppid}-2`].sort());
  });

  it("answers undefined when nix-store --serve cannot be started, so the caller runs nix-store --realise", async () => {
    const warnings: string[] = [];
    const builders = new NixBuilders(`${dir}/pool-missing`, NO_LIMITS, (level, message) => warnings.push(`${level} ${message}`));
    try {
      const run = await builders.build(drvs.e!, options([], { env: { ...process.env, PATH: `${dir}/empty` } }));
      assert.equal(run, undefined);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /^warn nix-store --serve --write could not be started .*: builds run nix-store --realise for 10 minutes$/);
      assert.equal(await builders.build(drvs.e!, options([])), undefined, "not tried again at once");
    } finally {
      builders.close();
    }
  });
});

