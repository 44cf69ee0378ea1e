import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { BuildLog, BuildResult, LogBatch, MAX_FRAME_BYTES } from "@nimbus/protocol";
import { ManualClock } from "./manual-clock.ts";
import { alive, entries, nixEval, NONCE, PRELUDE, startTaskAgent, type TaskSetup, tmpRoot } from "./task-fixtures.ts";

/** Real time, as a guard only: the agent's clock does not move while the test waits. */
function withinRealSeconds<T>(promise: Promise<T>, what: string, seconds = 15): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${seconds} s`)), seconds * 1000).unref()),
  ]);
}

/** Whether `promise` has settled (after letting pending callbacks run). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

/** Sends a build of a sleeper and resolves with the pid of its `sleep` once it runs. */
async function startSleeper(target: TaskSetup, name: string): Promise<{ taskId: string; pid: number }> {
  const taskId = `build-${name}-${NONCE}`;
  target.service.send({ type: "build", taskId, drvPath: drvs[name]!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
  let pid: number | undefined;
  await target.service.until(() => {
    const line = target.of(taskId, "build-log").flatMap((l) => l.lines).find((l) => l.startsWith("started "));
    pid = line === undefined ? undefined : Number(line.slice("started ".length));
    return pid !== undefined;
  }, `the build of ${name} to start`, 10_000);
  return { taskId, pid: pid! };
}


async function gone(pid: number, what: string): Promise<void> {
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(30);
  assert.equal(alive(pid), false, `${what}: the builder (pid ${pid}) is still running`);
}

let dir: string;
let setup: TaskSetup;
let drvs: Record<string, { drvPath: string; outputs: Record<string, string> }>;
let taskCounter = 0;

before(async () => {
  dir = await tmpRoot();
  // No kvm here, but a feature Nix only knows of through the agent's configuration.
  setup = await startTaskAgent(dir, `systemFeatures = ["big-parallel", "nimbus-extra"]`);
  const withFeatures = (name: string, features: string) =>
    `derivation { name = "nimbus-test-${name}"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; requiredSystemFeatures = [ ${features} ]; }`;
  drvs = await nixEval(
    `let
      ${PRELUDE}
      d = x: { inherit (x) drvPath; outputs = builtins.listToAttrs (map (o: { name = o; value = x.\${o}.outPath; }) (x.outputs or [ "out" ])); };
      # Prints the pid of the process that then sleeps (exec), so a test can see it go.
      sleeper = name: mk "build-sleeper-\${name}" "echo started $$; exec /bin/sleep 30";
    in builtins.mapAttrs (_: d) {
      ok = mk "build-ok" "echo first line; echo second line >&2; echo done > $out";
      multi = derivation { name = "nimbus-test-multi"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out; echo > $dev" ]; outputs = [ "out" "dev" ]; };
      fails = mk "build-fails" "echo about to fail; i=0; while [ $i -lt 80 ]; do i=$((i+1)); echo line $i; done; exit 3";
      kvm = ${withFeatures("kvm", `"kvm"`)};
      extra = ${withFeatures("extra", `"nimbus-extra" "big-parallel"`)};
      # Longer than the 1 s the first log batch waits: "started" and "pausing" arrive while they run.
      pause = mk "build-pause" "echo pausing; /bin/sleep 2.5; echo resumed; echo > $out";
      kept = mk "build-kept" "echo > $out";
      hooked = mk "build-hooked" "echo > $out";
      spawns = mk "build-spawns" "echo > $out";
      spawns-again = mk "build-spawns-again" "echo > $out";
      disowned = mk "build-disowned" "echo > $out";
      finishing = mk "build-finishing" "echo started; /bin/sleep 2.5; echo > $out";
      reconnecting = mk "build-reconnecting" "echo started; /bin/sleep 2.5; echo > $out";
    } // builtins.listToAttrs (map (name: { inherit name; value = d (sleeper name); }) [ "cancelled" "unknown" "handback" "switch" "lost" ])`,
    dir,
  );
});
after(async () => {
  await setup.stop();
  await rm(dir, { recursive: true, force: true });
});

async function build(name: string, drvPath = drvs[name]!.drvPath, target = setup) {
  const taskId = `build-${name}-${NONCE}-${++taskCounter}`;
  target.service.send({ type: "build", taskId, drvPath, system: "x86_64-linux", requiredFeatures: [] });
  const finished = await target.finishedTask(taskId);
  const results = target.of(taskId, "build-result");
  assert.equal(results.length, 1, "exactly one result");
  // The log's last batch may ride on the result.
  const logs = target.logBatches(taskId);
  assert.deepEqual(logs.map((l) => l.seq), [...logs.keys()], "log batches numbered from 0");
  assert.equal(target.service.taskMessages(taskId).at(-1)?.type, "build-result", "the result comes after the log");
  return { taskId, finished, result: results[0]!, lines: logs.flatMap((l) => l.lines), logFrames: target.of(taskId, "build-log").length };
}

describe("builds", () => {
  it("reports outputs and streams the build's stdout and stderr", async () => {
    const { result, lines, finished, logFrames } = await build("ok");
    assert.equal(finished.status, "succeeded");
    const { log, ...rest } = result;
    assert.deepEqual(rest, { type: "build-result", taskId: result.taskId, drvPath: drvs["ok"]!.drvPath, status: "succeeded", outputs: drvs["ok"]!.outputs });
    assert.ok(lines.includes("first line") && lines.includes("second line"), lines.join("\n"));
    // A build this short sends its whole log with its result: no frame of its own (protocol 8).
    assert.equal(logFrames, 0, "no build-log frame");
    assert.ok(log?.lines.includes("first line"), JSON.stringify(log));
    assert.deepEqual(await entries(`${setup.workDirectory}/build`), [], "the build's directory is gone");
  });

  it("has Nix decline its build hook at once with the agent's script, not start build-remote (no remote builders here)", async () => {
    // The agent checked its script at start; this one also says it ran (the hook's stdin is Nix's settings, then the request).
    const hook = `${setup.workDirectory}/nix-build-hook`;
    const marker = `${dir}/hook-ran`;
    await writeFile(hook, `#!/bin/sh\necho ran >> ${marker}\necho "# decline-permanently" >&2\nexec cat >/dev/null\n`, { mode: 0o700 });
    const { result } = await build("hooked");
    assert.equal(result.status, "succeeded", result.error);
    assert.equal(await readFile(marker, "utf8"), "ran\n", "Nix asked the agent's hook, once");
  });

  it("starts no process per build: builds go to a long-lived nix-store --serve --write (outputs read from the .drv, not asked of Nix)", async () => {
    // Builtin modules' ESM bindings follow their CommonJS object after syncBuiltinESMExports.
    const childProcess = createRequire(import.meta.url)("node:child_process") as typeof import("node:child_process");
    const original = childProcess.spawn;
    const started: string[] = [];
    childProcess.spawn = ((command: string, args: readonly string[], options: object) => {
      started.push(`${command} ${args.slice(0, 2).join(" ")}`);
      return original(command, args, options);
    }) as typeof original;
    syncBuiltinESMExports();
    try {
      for (const name of ["spawns", "spawns-again"]) {
        const { result } = await build(name);
        assert.equal(result.status, "succeeded", result.error);
      }
    } finally {
      childProcess.spawn = original;
      syncBuiltinESMExports();
    }
    // One was started by an earlier build here, unless it was retired meanwhile.
    assert.ok(started.length <= 1 && started.every((s) => s === "nix-store --serve --write"), started.join("\n"));
  });

  it("maps every output of a multi-output derivation", async () => {
    const { result } = await build("multi");
    assert.equal(result.status, "succeeded");
    assert.deepEqual(Object.keys(result.outputs ?? {}).sort(), ["dev", "out"]);
    assert.deepEqual(result.outputs, drvs["multi"]!.outputs);
  });

  it("reports a builder failure with its exit code and the last 50 lines", async () => {
    const { result, lines } = await build("fails");
    assert.equal(result.status, "failed");
    assert.equal(result.exitCode, 3);
    assert.ok(result.logTail && result.logTail.length === 50, `${result.logTail?.length} lines`);
    assert.equal(result.logTail.at(-1), `error: builder for '${drvs["fails"]!.drvPath}' failed with exit code 3`);
    assert.equal(result.logTail.at(-2), "line 80");
    assert.ok(lines.includes("about to fail") && lines.includes("line 1"));
    BuildResult.parse(result);
  });

  it("builds a derivation needing a feature only the agent's configuration declares", async () => {
    const { result } = await build("extra");
    assert.equal(result.status, "succeeded", result.error);
  });

  it("calls a derivation whose features the agent lacks exceptional", async () => {
    const { result } = await build("kvm");
    assert.equal(result.status, "exceptional");
    assert.match(result.error ?? "", /^error: a 'x86_64-linux' with features \{kvm\} is required to build/);
    assert.equal(result.logTail, undefined);
  });

  it("calls a derivation missing from the store exceptional", async () => {
    const { result } = await build("missing", `/nix/store/${"0".repeat(32)}-nimbus-test-missing.drv`);
    assert.equal(result.status, "exceptional");
    assert.match(result.error ?? "", /^error: cannot build missing derivation '\/nix\/store\/0+-nimbus-test-missing\.drv'/);
  });

  it("keeps log batches within a frame", async () => {
    const name = `noisy-${NONCE}`;
    // 3,000 lines of 2 KB, and one too long for a line: cut, never a frame too large.
    const script = [
      "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); printf '%02000d\\\\n' $i; done",
      "x=xxxxxxxxxx; x=$x$x$x$x$x$x$x$x$x$x; x=$x$x$x$x$x$x$x$x$x$x; x=$x$x$x$x$x$x$x$x$x$x; echo $x$x",
      "echo > $out",
    ].join("; ");
    const { drvPath } = await nixEval<{ drvPath: string }>(`let ${PRELUDE} in { inherit (mk "${name}" "${script}") drvPath; }`, dir);
    drvs[name] = { drvPath, outputs: {} };
    const { result, taskId } = await build(name);
    assert.equal(result.status, "succeeded", result.error);
    const frames = setup.service.connections.flatMap((c) => c.frames).filter((f) => f.includes(taskId) && /"build-log"|"build-result"/.test(f));
    // The last batch may ride on the result: its frame is held to the same limit.
    const lines = frames.flatMap((f) => {
      const message = JSON.parse(f) as { type: string; log?: unknown };
      return message.type === "build-log" ? BuildLog.parse(message).lines : (LogBatch.optional().parse(message.log)?.lines ?? []);
    });
    assert.ok(frames.length > 2 && frames.every((f) => Buffer.byteLength(f) <= MAX_FRAME_BYTES));
    assert.equal(lines.filter((l) => /^0+\d+$/.test(l)).length, 3000);
    assert.ok(lines.some((l) => l.length === 4096 && l.endsWith("…")), "the 20,000-character line is cut to 4096");
  });
});

describe("builds across a reconnect", () => {
  it("keeps running and sends what it could not send after the next welcome", async () => {
    let refusing = false;
    const other = await startTaskAgent(dir, "", { upgradeStatus: () => (refusing ? 503 : 101) });
    try {
      const taskId = `build-pause-${NONCE}`;
      other.service.send({ type: "build", taskId, drvPath: drvs["pause"]!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
      await other.service.until(() => other.of(taskId, "build-log").some((l) => l.lines.includes("pausing")), "the build to start", 10_000);
      refusing = true;
      other.service.connections[0]!.ws.terminate();
      const finished = await other.finishedTask(taskId);
      assert.equal(finished.status, "succeeded");
      assert.equal(other.of(taskId, "build-result").length, 0, "nothing sent while disconnected");
      refusing = false;
      await other.service.until(() => other.of(taskId, "build-result").length === 1, "the result after reconnecting");
      const second = other.service.connections[1]!.received.map((m) => (m as { type: string }).type);
      assert.deepEqual(second.slice(0, 2), ["hello", "request-work"]);
      assert.equal(second.at(-1), "build-result");
      // The log written meanwhile arrives too (its last batch perhaps with the result).
      const batches = other.logBatches(taskId);
      assert.ok(batches.some((l) => l.lines.includes("resumed")), "the log written meanwhile arrives too");
      // How many batches depends on when Nix prints (the first after 1 s, then every 250 ms): numbered from 0, no gap.
      const seqs = batches.map((l) => l.seq);
      assert.deepEqual(seqs, [...seqs.keys()]);
    } finally {
      await other.stop();
    }
  });
});

describe("final messages", () => {
  it("keeps a result until result-ack, sends it again after every reconnect, and forgets a disowned one", async () => {
    const other = await startTaskAgent(dir, "", { ackResults: false });
    try {
      const kept = `build-kept-${NONCE}`;
      const disowned = `build-disowned-${NONCE}`;
      for (const [taskId, name] of [[kept, "kept"], [disowned, "disowned"]] as const) {
        other.service.send({ type: "build", taskId, drvPath: drvs[name]!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
      }
      await other.finishedTask(kept);
      await other.finishedTask(disowned);
      assert.equal(other.of(kept, "build-result").length + other.of(disowned, "build-result").length, 2);
      assert.deepEqual(other.agent.tasksInProgress(), []);
      assert.deepEqual(other.agent.unacknowledgedResults().sort(), [disowned, kept].sort());

      // The service does not hold this one for us: it is forgotten, with one line.
      other.service.unknownTask(disowned, "task is held by another session");
      await other.service.until(() => other.agent.unacknowledgedResults().length === 1, "the disowned result to be dropped");
      assert.deepEqual(
        other.lines.filter((l) => l.includes(disowned) && !l.startsWith("debug") && !l.includes("building") && !l.includes("succeeded")),
        [`warn task ${disowned} dropped: the service says it is not this agent's (task is held by another session)`],
      );

      other.service.connections[0]!.ws.terminate();
      await other.service.until(() => other.service.types(1).includes("build-result"), "the result again on the next connection");
      assert.deepEqual(other.service.hellos[1]!.tasksInProgress, [kept], "hello names the task whose result is unacknowledged");
      assert.deepEqual(other.service.types(1), ["hello", "request-work", "build-result"]);
      assert.equal(other.of(disowned, "build-result").length, 1, "the disowned result is not sent again");

      other.service.ackResult(kept);
      await other.service.until(() => other.agent.unacknowledgedResults().length === 0, "the ack to be taken");
      other.service.connections[1]!.ws.terminate();
      await other.service.until(() => other.service.types(2).includes("request-work"), "a third connection");
      await sleep(200);
      assert.deepEqual(other.service.hellos[2]!.tasksInProgress, []);
      assert.deepEqual(other.service.types(2), ["hello", "request-work"], "an acknowledged result is not sent again");
      assert.equal(other.of(kept, "build-result").length, 2);
    } finally {
      await other.stop();
    }
  });
});

describe("acknowledgements carried by a build", () => {
  it("a build's acks acknowledge each listed result as result-ack does: it is not sent again after a reconnect", async () => {
    const other = await startTaskAgent(dir, "", { ackResults: false });
    try {
      const first = `build-acked-first-${NONCE}`;
      const carrier = `build-acked-carrier-${NONCE}`;
      other.service.send({ type: "build", taskId: first, drvPath: drvs.kept!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
      await other.finishedTask(first);
      assert.deepEqual(other.agent.unacknowledgedResults(), [first]);

      // The next build carries the first one's ack (and one for a task this agent never had, which changes nothing).
      other.service.send({ type: "build", taskId: carrier, drvPath: drvs.ok!.drvPath, system: "x86_64-linux", requiredFeatures: [], acks: [first, "build-never-seen"] });
      await other.finishedTask(carrier);
      assert.deepEqual(other.agent.unacknowledgedResults(), [carrier], "the carried ack was taken, and the carrier itself was built");

      other.service.connections[0]!.ws.terminate();
      await other.service.until(() => other.service.types(1).includes("build-result"), "the unacknowledged result again on the next connection");
      assert.deepEqual(other.service.hellos[1]!.tasksInProgress, [carrier], "hello names only the result still unacknowledged");
      await sleep(200);
      assert.equal(other.of(first, "build-result").length, 1, "the acknowledged result is not sent again");
      assert.equal(other.of(carrier, "build-result").length, 2);
    } finally {
      await other.stop();
    }
  });
});

describe("cancel and unknown-task", () => {
  it("names a running build in hello after a reconnect; a cancel kills it and nothing more is reported", async () => {
    const { taskId, pid } = await startSleeper(setup, "cancelled");
    const hellos = setup.service.hellos.length;
    setup.service.connections.at(-1)!.ws.terminate();
    await setup.service.until(() => setup.service.hellos.length === hellos + 1 && setup.agent.connected(), "a reconnect");
    assert.deepEqual(setup.service.hellos.at(-1)!.tasksInProgress, [taskId]);

    setup.service.cancel(taskId, "job j1 was cancelled");
    const finished = await setup.finishedTask(taskId, 5_000);
    assert.equal(finished.status, "cancelled");
    assert.match(finished.error ?? "", /cancelled by the service: job j1 was cancelled/);
    await gone(pid, "after cancel");
    const messages = setup.service.taskMessages(taskId).length;
    await sleep(400);
    assert.equal(setup.of(taskId, "build-result").length, 0, "no result for a cancelled task");
    assert.equal(setup.service.taskMessages(taskId).length, messages, "nothing more about it");
    assert.deepEqual(setup.agent.unacknowledgedResults(), []);
    assert.ok(setup.lines.includes(`info task ${taskId} cancelled by the service: job j1 was cancelled`), setup.lines.join("\n"));
    assert.deepEqual(await entries(`${setup.workDirectory}/build`), []);

    setup.service.cancel("build-never-seen", "whatever");
    await sleep(50);
    assert.equal(setup.agent.connected(), true, "a cancel of an unknown task is ignored");
  });

  it("stops a running build the service says is not this agent's, with one line", async () => {
    const { taskId, pid } = await startSleeper(setup, "unknown");
    setup.service.unknownTask(taskId, "task was handed to another agent");
    const finished = await setup.finishedTask(taskId, 5_000);
    assert.equal(finished.status, "cancelled");
    await gone(pid, "after unknown-task");
    await sleep(300);
    assert.equal(setup.of(taskId, "build-result").length, 0);
    assert.deepEqual(
      setup.lines.filter((l) => l.includes(taskId) && !l.startsWith("debug")),
      [
        `info task ${taskId}: building ${drvs["unknown"]!.drvPath}`,
        `warn task ${taskId} dropped: the service says it is not this agent's (task was handed to another agent)`,
      ],
    );
  });
});

describe("shutdown with a build running", () => {
  it("finish: pauses, waits for the build's result and its ack, then says goodbye", async () => {
    const other = await startTaskAgent(dir, "", { ackResults: false });
    try {
      const taskId = `build-finishing-${NONCE}`;
      other.service.send({ type: "build", taskId, drvPath: drvs["finishing"]!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
      await other.service.until(() => other.of(taskId, "build-log").some((l) => l.lines.includes("started")), "the build to start", 10_000);
      const stopping = other.agent.stop({ mode: "finish" });
      await other.service.until(() => other.service.pauses().length === 1, "pause");
      assert.equal(other.agent.shuttingDown(), "finish");
      await other.service.until(() => other.of(taskId, "build-result").length === 1, "the result", 10_000);
      await sleep(200);
      assert.equal(other.service.goodbyes().length, 0, "no goodbye before the result is acknowledged");
      other.service.ackResult(taskId);
      await stopping;
      assert.deepEqual(await other.agent.exited, { reason: "stopped" });
      assert.equal(other.of(taskId, "build-result")[0]!.status, "succeeded");
      const types = other.service.types(0);
      assert.deepEqual(types.filter((t) => t !== "build-log"), ["hello", "request-work", "pause", "build-result", "goodbye"]);
      assert.equal((await other.service.connections[0]!.closed).code, 1000);
      const steps = other.lines.filter((l) => /shutting down|waiting up to|every task|goodbye/.test(l));
      assert.deepEqual(steps, [
        "info shutting down (finish): sent pause; the service sends no new work",
        "info waiting up to 600 s for 1 running task (signal again to hand them back now)",
        "info every task finished and its result was acknowledged",
        "info goodbye sent; closing the connection",
      ]);
    } finally {
      await other.stop();
    }
  });

  it("finish: pauses again on a new connection and delivers the result there", async () => {
    const other = await startTaskAgent(dir, "");
    try {
      const taskId = `build-reconnecting-${NONCE}`;
      other.service.send({ type: "build", taskId, drvPath: drvs["reconnecting"]!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
      await other.service.until(() => other.of(taskId, "build-log").some((l) => l.lines.includes("started")), "the build to start", 10_000);
      const stopping = other.agent.stop();
      await other.service.until(() => other.service.pauses().length === 1, "pause");
      other.service.connections[0]!.ws.terminate();
      await stopping;
      assert.deepEqual(other.service.hellos[1]!.tasksInProgress, [taskId]);
      assert.deepEqual(other.service.types(1).filter((t) => t !== "build-log"), ["hello", "pause", "build-result", "goodbye"]);
      assert.equal(other.of(taskId, "build-result")[0]!.status, "succeeded");
    } finally {
      await other.stop();
    }
  });

  it("hand-back: kills the build at once, sends pause and goodbye, and reports nothing for it", async () => {
    const clock = new ManualClock();
    const other = await startTaskAgent(dir, `shutdown = "hand-back"`, {}, { clock });
    try {
      const { taskId, pid } = await startSleeper(other, "handback");
      const at = clock.now();
      // The agent's clock does not move: the stop waits for no timeout.
      await withinRealSeconds(other.agent.stop(), "the stop");
      assert.equal(clock.now(), at);
      await gone(pid, "after hand-back");
      assert.deepEqual(other.service.types(0).filter((t) => t !== "build-log"), ["hello", "request-work", "pause", "goodbye"]);
      assert.equal(other.finished[0]?.status, "cancelled");
      assert.equal(other.of(taskId, "build-result").length, 0);
      assert.ok(other.lines.includes(`info stopping 1 running task (${taskId}): the goodbye hands it back`), other.lines.join("\n"));
    } finally {
      await other.stop();
    }
  });

  it("finish switches to hand-back when asked again", async () => {
    const clock = new ManualClock();
    const other = await startTaskAgent(dir, "", {}, { clock });
    try {
      const { taskId, pid } = await startSleeper(other, "switch");
      const first = other.agent.stop();
      await other.service.until(() => other.service.pauses().length === 1, "pause");
      await sleep(300);
      assert.equal(other.service.goodbyes().length, 0, "finish waits for the build");
      assert.equal(alive(pid), true);
      await withinRealSeconds(other.agent.stop({ mode: "hand-back" }), "the switch to hand-back");
      await first;
      await gone(pid, "after switching to hand-back");
      assert.equal(other.service.goodbyes().length, 1);
      assert.equal(other.of(taskId, "build-result").length, 0);
    } finally {
      await other.stop();
    }
  });

  it("exits cleanly within the timeout when the connection is lost while it waits", async () => {
    let refusing = false;
    const clock = new ManualClock();
    const other = await startTaskAgent(dir, "shutdownTimeoutSeconds = 1", { upgradeStatus: () => (refusing ? 503 : 101) }, { clock });
    try {
      const disconnects: unknown[] = [];
      other.agent.events.on("disconnected", (d) => disconnects.push(d));
      const { pid } = await startSleeper(other, "lost");
      const stopping = other.agent.stop();
      await other.service.until(() => other.service.pauses().length === 1, "pause");
      refusing = true;
      other.service.connections[0]!.ws.terminate();
      await other.service.until(() => disconnects.length === 1, "the loss to be noticed");
      // Retrying meanwhile (every attempt refused), up to just before the timeout…
      for (let elapsed = 0; elapsed < 999; elapsed += 111) {
        clock.advance(111);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(await settled(stopping), false, "still waiting for the build before shutdownTimeoutSeconds = 1");
      assert.equal(alive(pid), true);
      clock.advance(1_000 - 999);
      await withinRealSeconds(stopping, "the stop once the timeout is reached");
      await gone(pid, "after the timeout");
      assert.deepEqual(await other.agent.exited, { reason: "stopped" });
      assert.equal(other.service.goodbyes().length, 0);
      assert.ok(other.lines.some((l) => l.startsWith("warn shutdown timeout (1.0 s) reached")), other.lines.join("\n"));
      assert.ok(other.lines.some((l) => l.startsWith("warn left without a goodbye")), other.lines.join("\n"));
    } finally {
      await other.stop();
    }
  });
});
