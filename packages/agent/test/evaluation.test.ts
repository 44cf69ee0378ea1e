import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { EvaluationEvents, MAX_FRAME_BYTES, type EvaluationEvent } from "@nimbus/protocol";
import { entries, FLAKE_PRELUDE, gitRepo, nixEval, NONCE, PRELUDE, startTaskAgent, type TaskSetup, tmpRoot } from "./task-fixtures.ts";

const run = promisify(execFile);
const system = "x86_64-linux";
let dir: string;
let setup: TaskSetup;
let taskCounter = 0;
const taskId = (what: string) => `eval-${what}-${NONCE}-${++taskCounter}`;

before(async () => {
  dir = await tmpRoot();
  setup = await startTaskAgent(dir, `systemFeatures = ["big-parallel"]`);
});
after(async () => {
  await setup.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Sends an evaluate task for `repo` and waits for the agent to finish it. */
async function evaluate(repo: { dir: string; commit: string }, id = taskId("t"), cloneUrl = repo.dir) {
  setup.service.send({ type: "evaluate", taskId: id, jobId: "job-1", repository: "test/repo", cloneUrl, commit: repo.commit, ref: "refs/heads/main" });
  const finished = await setup.finishedTask(id, 30_000);
  return { id, finished, ...setup.service.evaluation(id) };
}

const CI_NIX = `
let
  ${PRELUDE}
  a = mk "a" "echo a > $out";
  b = mk "b" "echo \${a} > $out";
  c = mk "c" "echo \${b} > $out";
in {
  inherit c;
  fails = mk "fails" "echo about to fail; exit 3";
  broken = throw "broken on purpose";
  aborts = abort "gave up";
  nested = { recurseForDerivations = true; inner = mk "inner" "echo inner > $out"; };
  ignored = { inherit a b; hidden = mk "hidden" "echo > $out"; };
  kvm = derivation { name = "nimbus-test-kvm"; inherit nonce; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; requiredSystemFeatures = [ "kvm" "big-parallel" ]; };
  notADerivation = "just a string";
}
`;

interface Drv {
  drvPath: string;
  out: string;
}

describe("evaluation of ci.nix", () => {
  it("reports derivations inputs first, attributes, errors, and needsBuild", async () => {
    const repo = await gitRepo(dir, { "ci.nix": CI_NIX });
    const drvs = await nixEval<Record<string, Drv>>(
      `let s = import ./ci.nix; d = x: { inherit (x) drvPath; out = x.outPath; }; in
       { a = d s.ignored.a; b = d s.ignored.b; c = d s.c; fails = d s.fails; kvm = d s.kvm; inner = d s.nested.inner; }`,
      repo.dir,
    );
    const { id, finished, events, seqs, done } = await evaluate(repo);
    assert.equal(finished.status, "succeeded", finished.error);

    const derivation = (name: string, inputs: string[], features: string[] = []): EvaluationEvent => ({
      kind: "derivation",
      drvPath: drvs[name]!.drvPath,
      system,
      requiredFeatures: features,
      inputDrvs: inputs.map((i) => drvs[i]!.drvPath),
      outputs: { out: drvs[name]!.out },
      // No cache configured: the .drv is only in this agent's store.
      sources: [[`store:${setup.agent.info.storeId}`]],
    });
    const attribute = (path: string[], name: string): EvaluationEvent => ({
      kind: "attribute",
      path,
      drvPath: drvs[name]!.drvPath,
      attributeType: "regular",
      needsBuild: true,
    });
    const errors = events.filter((e) => e.kind === "attribute-error");
    assert.deepEqual(
      events.filter((e) => e.kind !== "attribute-error"),
      [
        derivation("a", []),
        derivation("b", ["a"]),
        derivation("c", ["b"]),
        derivation("fails", []),
        derivation("kvm", [], ["big-parallel", "kvm"]),
        derivation("inner", []),
        attribute(["c"], "c"),
        attribute(["fails"], "fails"),
        attribute(["kvm"], "kvm"),
        attribute(["nested", "inner"], "inner"),
      ],
    );
    assert.deepEqual(
      errors.map((e) => e.kind === "attribute-error" && e.path),
      [["aborts"], ["broken"]],
    );
    const message = (p: string) => (errors.find((e) => e.kind === "attribute-error" && e.path[0] === p) as { message: string }).message;
    assert.match(message("broken"), /^error: broken on purpose/);
    assert.match(message("aborts"), /^error: evaluation aborted with the following error message: 'gave up'/);
    assert.ok(!message("broken").includes("--show-trace"), message("broken"));
    // Attribute events come after all derivations, in attribute order, errors interleaved.
    assert.deepEqual(
      events.slice(6).map((e) => (e.kind === "derivation" ? e.drvPath : e.path.join("."))),
      ["aborts", "broken", "c", "fails", "kvm", "nested.inner"],
    );

    assert.ok(done, "evaluation-done was sent");
    assert.equal(done.status, "succeeded");
    assert.equal(done.batches, seqs.length);
    assert.deepEqual(seqs, [...Array(done.batches).keys()], "batches numbered from 0");
    const types = setup.service.taskMessages(id).map((m) => m.type);
    assert.equal(types.at(-1), "evaluation-done", "done comes last");
    assert.deepEqual(await entries(`${setup.workDirectory}/eval`), [], "the checkout is gone");
  });

  it("finds nothing to build once everything is built", async () => {
    const repo = await gitRepo(dir, {
      "ci.nix": `let ${PRELUDE} a = mk "again-a" "echo a > $out"; in { b = mk "again-b" "echo \${a} > $out"; }`,
    });
    const first = await evaluate(repo);
    assert.deepEqual(first.events.map((e) => e.kind), ["derivation", "derivation", "attribute"]);
    const drvPath = (first.events.at(-1) as { drvPath: string }).drvPath;
    await run("nix-store", ["--realise", drvPath, "--option", "substituters", "", "--no-gc-warning"]);
    const second = await evaluate(repo);
    assert.deepEqual(second.events, [{ kind: "attribute", path: ["b"], drvPath, attributeType: "regular", needsBuild: false }]);
    assert.equal(second.done?.batches, 1);
  });

  it("fails with Nix's message on a syntax error", async () => {
    const repo = await gitRepo(dir, { "ci.nix": "{ a = 1;\n  b = ; }\n" });
    const { finished, done, seqs } = await evaluate(repo);
    assert.equal(finished.status, "failed");
    assert.equal(done?.status, "failed");
    assert.equal(done?.batches, 0);
    assert.deepEqual(seqs, []);
    assert.match(done?.error ?? "", /^error: syntax error, unexpected ';'/);
    assert.match(done?.error ?? "", /at ci\.nix:2:7/, "paths are relative to the repository");
  });

  it("fails when the file is not an attribute set, or there is nothing to evaluate", async () => {
    const list = await evaluate(await gitRepo(dir, { "default.nix": "[ 1 2 ]" }));
    assert.equal(list.done?.status, "failed");
    assert.match(list.done?.error ?? "", /the top-level value must be an attribute set .* not list/);
    const none = await evaluate(await gitRepo(dir, { "README": "nothing here" }));
    assert.equal(none.done?.status, "failed");
    assert.match(none.done?.error ?? "", /has no flake\.nix, ci\.nix, nix\/ci\.nix, default\.nix/);
  });

  it("calls a function with {} and fails cleanly on an unknown commit", async () => {
    const repo = await gitRepo(dir, { "default.nix": `{ greeting ? "hi" }: let ${PRELUDE} in { x = mk "fn-\${greeting}" "echo > $out"; }` });
    const ok = await evaluate(repo, taskId("fn"), `file://${repo.dir}`);
    assert.deepEqual(ok.events.map((e) => e.kind), ["derivation", "attribute"]);
    const missing = await evaluate({ dir: repo.dir, commit: "0".repeat(40) });
    assert.equal(missing.done?.status, "failed");
    assert.match(missing.done?.error ?? "", /commit 0{40} is not in/);
  });
});

describe("evaluation of a flake", () => {
  it("evaluates checks and packages of the agent's systems", async () => {
    const repo = await gitRepo(dir, {
      "flake.nix": `{
        outputs = { self }: let ${FLAKE_PRELUDE} in {
          checks.${system}.x = mk "flake-x" "echo \${self} > $out";
          packages.${system}.default = mk "flake-p" "echo p > $out";
          packages.aarch64-darwin.default = mk "flake-darwin" "echo no > $out";
          lib.notBuilt = 1;
        };
      }`,
    });
    const { done, events } = await evaluate(repo);
    assert.equal(done?.status, "succeeded", done?.error);
    assert.deepEqual(
      events.filter((e) => e.kind !== "derivation").map((e) => e.kind === "attribute" && e.path),
      [
        ["checks", system, "x"],
        ["packages", system, "default"],
      ],
    );
    assert.equal(events.filter((e) => e.kind === "derivation").length, 2);
  });

  it("uses herculesCI.onPush.default.outputs, calling herculesCI with the repository's details", async () => {
    const repo = await gitRepo(dir, {
      "flake.nix": `{
        outputs = { self }: let ${FLAKE_PRELUDE} in {
          packages.${system}.skipped = mk "hci-skipped" "echo > $out";
          herculesCI = { primaryRepo, ... }: {
            onPush.default.outputs = { deep.set.built = mk "hci-\${primaryRepo.branch}-\${primaryRepo.shortRev}" "echo > $out"; };
          };
        };
      }`,
    });
    const { done, events } = await evaluate(repo);
    assert.equal(done?.status, "succeeded", done?.error);
    const attributes = events.filter((e) => e.kind === "attribute");
    assert.deepEqual(attributes.map((e) => e.kind === "attribute" && e.path), [["deep", "set", "built"]]);
    assert.match((attributes[0] as { drvPath: string }).drvPath, new RegExp(`nimbus-test-hci-main-${repo.commit.slice(0, 7)}\\.drv$`));
  });
});

describe("evaluation batches", () => {
  it("keeps every batch within a frame, waits for acks (4 at most in flight), resends after a reconnect, keeps evaluation-done until acknowledged", async () => {
    const count = 3000;
    const repo = await gitRepo(dir, {
      "ci.nix": `let ${PRELUDE} in builtins.listToAttrs (builtins.genList (i: { name = "drv-with-a-longish-name-\${toString i}"; value = mk "many-\${toString i}" "echo \${toString i} > $out"; }) ${count})`,
    });
    const { service } = setup;
    service.ackBatches = false;
    const id = taskId("many");
    service.send({ type: "evaluate", taskId: id, jobId: "job-2", repository: "test/many", cloneUrl: repo.dir, commit: repo.commit });
    await service.until(() => service.batches(id).length === 4, "four unacknowledged batches", 20_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(service.batches(id).length, 4, "no fifth batch before an ack");

    const first = service.connections.at(-1)!;
    first.ws.terminate();
    await service.until(() => service.connections.length >= 2 && setup.agent.connected(), "a reconnect");
    await service.until(() => service.connections.at(-1)!.received.filter((m) => (m as { type: string }).type === "evaluation-events").length === 4, "the 4 batches again");
    assert.ok(service.hellos.at(-1)!.tasksInProgress.includes(id), "hello names the running evaluation");
    const resent = service.connections.at(-1)!.received;
    assert.deepEqual(
      resent.map((m) => (m as { type: string; seq?: number }).type === "evaluation-events" ? (m as { seq: number }).seq : (m as { type: string }).type),
      ["hello", "request-work", 0, 1, 2, 3],
    );

    service.ackBatches = true;
    service.ackResults = false;
    service.ackPending(id);
    const finished = await setup.finishedTask(id, 30_000);
    assert.equal(finished.status, "succeeded", finished.error);

    // evaluation-done is kept until result-ack: sent again on the next connection, after nothing else.
    assert.deepEqual(setup.agent.unacknowledgedResults(), [id]);
    const connections = service.connections.length;
    service.connections.at(-1)!.ws.terminate();
    await service.until(() => service.types(connections).includes("evaluation-done"), "evaluation-done again");
    assert.deepEqual(service.types(connections), ["hello", "request-work", "evaluation-done"]);
    assert.deepEqual(service.hellos.at(-1)!.tasksInProgress, [id]);
    service.ackResults = true;
    service.ackResult(id);
    await service.until(() => setup.agent.unacknowledgedResults().length === 0, "the ack to be taken");
    const { events, seqs, done } = service.evaluation(id);
    assert.equal(events.filter((e) => e.kind === "derivation").length, count);
    assert.equal(events.filter((e) => e.kind === "attribute").length, count);
    assert.equal(done?.batches, seqs.length);
    assert.ok(seqs.length > 6000 / 1000, `split by size, not only by count (${seqs.length} batches)`);
    assert.equal(service.taskMessages(id).filter((m) => m.type === "evaluation-done").length, 2);
    const frames = service.connections.flatMap((c) => c.frames).filter((f) => f.includes(`"evaluation-events"`) && f.includes(id));
    for (const frame of frames) {
      assert.ok(Buffer.byteLength(frame) <= MAX_FRAME_BYTES, `a batch of ${Buffer.byteLength(frame)} bytes`);
      EvaluationEvents.parse(JSON.parse(frame));
    }
  });
});
