import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { BuildLog, BuildResult, MAX_FRAME_BYTES } from "@nimbus/protocol";
import { entries, nixEval, NONCE, PRELUDE, startTaskAgent, type TaskSetup, tmpRoot } from "./task-fixtures.ts";

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
    in builtins.mapAttrs (_: d) {
      ok = mk "build-ok" "echo first line; echo second line >&2; echo done > $out";
      multi = derivation { name = "nimbus-test-multi"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out; echo > $dev" ]; outputs = [ "out" "dev" ]; };
      fails = mk "build-fails" "echo about to fail; i=0; while [ $i -lt 80 ]; do i=$((i+1)); echo line $i; done; exit 3";
      kvm = ${withFeatures("kvm", `"kvm"`)};
      extra = ${withFeatures("extra", `"nimbus-extra" "big-parallel"`)};
      slow = mk "build-slow" "echo sleeping; /bin/sleep 30; echo > $out";
      pause = mk "build-pause" "echo pausing; /bin/sleep 0.5; echo resumed; echo > $out";
    }`,
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
  const logs = target.of(taskId, "build-log");
  const results = target.of(taskId, "build-result");
  assert.equal(results.length, 1, "exactly one result");
  assert.deepEqual(logs.map((l) => l.seq), [...logs.keys()], "log batches numbered from 0");
  assert.equal(target.service.taskMessages(taskId).at(-1)?.type, "build-result", "the result comes after the log");
  return { taskId, finished, result: results[0]!, lines: logs.flatMap((l) => l.lines) };
}

describe("builds", () => {
  it("reports outputs and streams the build's stdout and stderr", async () => {
    const { result, lines, finished } = await build("ok");
    assert.equal(finished.status, "succeeded");
    assert.deepEqual(result, { type: "build-result", taskId: result.taskId, drvPath: drvs["ok"]!.drvPath, status: "succeeded", outputs: drvs["ok"]!.outputs });
    assert.ok(lines.includes("first line") && lines.includes("second line"), lines.join("\n"));
    assert.deepEqual(await entries(`${setup.workDirectory}/build`), [], "the build's directory is gone");
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
    const frames = setup.service.connections.flatMap((c) => c.frames).filter((f) => f.includes(taskId) && f.includes(`"build-log"`));
    const lines = frames.flatMap((f) => BuildLog.parse(JSON.parse(f)).lines);
    assert.ok(frames.length > 1 && frames.every((f) => Buffer.byteLength(f) <= MAX_FRAME_BYTES));
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
      assert.ok(other.of(taskId, "build-log").some((l) => l.lines.includes("resumed")), "the log written meanwhile arrives too");
      assert.deepEqual(other.of(taskId, "build-log").map((l) => l.seq), [0, 1]);
    } finally {
      await other.stop();
    }
  });
});

describe("stopping with a build running", () => {
  it("kills the build and reports it exceptional", async () => {
    const other = await startTaskAgent(dir, "");
    try {
      const taskId = `build-slow-${NONCE}`;
      other.service.send({ type: "build", taskId, drvPath: drvs["slow"]!.drvPath, system: "x86_64-linux", requiredFeatures: [] });
      await other.service.until(() => other.of(taskId, "build-log").some((l) => l.lines.includes("sleeping")), "the build to start", 10_000);
      assert.deepEqual(other.agent.tasksInProgress(), [taskId]);
      const started = Date.now();
      await other.agent.stop();
      assert.ok(Date.now() - started < 4_000, `stop took ${Date.now() - started} ms`);
      assert.equal(other.finished[0]?.status, "exceptional");
      const [result] = other.of(taskId, "build-result");
      assert.equal(result?.status, "exceptional");
      assert.match(result?.error ?? "", /interrupted/);
    } finally {
      await other.stop();
    }
  });
});
