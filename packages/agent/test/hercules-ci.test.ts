import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import type { EvaluateTask, EvaluationEvent } from "@nimbus/protocol";
import { buildRoots } from "../src/evaluation-events.ts";
import { herculesCIArgs } from "../src/hercules-ci-args.ts";
import type { DerivationInfo } from "../src/nix-closure.ts";
import { FLAKE_PRELUDE, gitRepo, NONCE, PRELUDE, startTaskAgent, type TaskSetup, tmpRoot } from "./task-fixtures.ts";

// The herculesCI attribute (docs/effects.md): handlers, Hercules' arguments, attribute types.
const system = "x86_64-linux";
let dir: string;
let setup: TaskSetup;
let counter = 0;

before(async () => {
  dir = await tmpRoot();
  setup = await startTaskAgent(dir);
});
after(async () => {
  await setup.stop();
  await rm(dir, { recursive: true, force: true });
});

async function evaluate(repo: { dir: string; commit: string }, extra: Partial<EvaluateTask> = {}) {
  const id = `eval-hci-${NONCE}-${++counter}`;
  setup.service.send({ type: "evaluate", taskId: id, jobId: "job-1", repository: "acme/widgets", cloneUrl: repo.dir, commit: repo.commit, ref: "refs/heads/main", ...extra });
  await setup.finishedTask(id, 30_000);
  return setup.service.evaluation(id);
}

const attributes = (events: EvaluationEvent[]) =>
  events.flatMap((e) => (e.kind === "attribute" ? [[e.path.join("."), e.attributeType, e.needsBuild] as const] : []));
const derivationNames = (events: EvaluationEvent[]) =>
  events.flatMap((e) => (e.kind === "derivation" ? [[e.drvPath.replace(/^.*-nimbus-test-(.*)\.drv$/, "$1"), e.excused ?? "counts"] as const] : []));

// Two onPush handlers (no "default": the first name is walked), a schedule, every attribute type.
const CI_NIX = `
let
  ${PRELUDE}
  dep = mk "hci-dep-${NONCE}" "echo dep > $out";
  shellDep = mk "hci-shell-dep-${NONCE}" "echo shell > $out";
  effectDep = mk "hci-effect-dep-${NONCE}" "echo tool > $out";
  flaky = mk "hci-flaky-${NONCE}" "exit 1";
in {
  herculesCI = args:
    assert args.ref == "refs/heads/main" && args.branch == "main" && args.tag == null;
    assert args.primaryRepo.owner == "acme" && args.primaryRepo.name == "widgets";
    assert builtins.stringLength args.shortRev == 7 && args.rev == args.primaryRepo.rev;
    assert builtins.isString args.herculesCI.apiBaseUrl;
    assert builtins.pathExists (args.primaryRepo.outPath + "/ci.nix");
    {
      onPush.build.outputs = {
        plain = mk "hci-plain-${NONCE}" "echo \${dep} > $out";
        knownBroken = (mk "hci-must-${NONCE}" "exit 1") // { requireFailure = true; };
        unstable = (mk "hci-may-${NONCE}" "echo \${flaky} > $out") // { ignoreFailure = true; };
        shell = (mk "hci-shell-${NONCE}" "echo \${shellDep} > $out") // { buildDependenciesOnly = true; };
        nested.deeper = mk "hci-nested-${NONCE}" "echo > $out";
        notFollowed = { recurseForDerivations = false; x = mk "hci-hidden-${NONCE}" "echo > $out"; };
        misplaced = (mk "hci-misplaced-${NONCE}" "echo > $out") // { isEffect = true; };
        effects.deploy = (mk "hci-deploy-${NONCE}" "echo \${effectDep}") // { isEffect = true; };
      };
      onPush.lint = { outputs = { lint = mk "hci-lint-${NONCE}" "echo > $out"; }; };
      onPush.off = { enable = false; outputs = { }; };
      onSchedule.nightly = { when = { hour = 3; minute = 15; dayOfWeek = [ "mon" "Fri" ]; }; outputs = { n = mk "hci-nightly-${NONCE}" "echo > $out"; }; };
      onSchedule.hourly.outputs = { };
    };
}
`;

describe("herculesCI in ci.nix", () => {
  it("walks the first onPush handler, reads the others and the schedules, and types each attribute", async () => {
    const repo = await gitRepo(dir, { "ci.nix": CI_NIX });
    const { done, events } = await evaluate(repo);
    assert.equal(done?.status, "succeeded", done?.error);
    assert.deepEqual(done?.config, {
      walked: "build",
      onPush: ["build", "lint"],
      onSchedule: [
        { name: "hourly", when: {} },
        { name: "nightly", when: { hour: [3], minute: 15, dayOfWeek: ["Mon", "Fri"] } },
      ],
    });
    assert.deepEqual(attributes(events), [
      ["effects.deploy", "effect", true],
      ["knownBroken", "must-fail", true],
      ["nested.deeper", "regular", true],
      ["plain", "regular", true],
      ["shell", "dependencies-only", true],
      ["unstable", "may-fail", true],
    ]);
    const misplaced = events.find((e) => e.kind === "attribute-error");
    assert.deepEqual(misplaced?.kind === "attribute-error" && misplaced.path, ["misplaced"]);
    assert.match(misplaced?.kind === "attribute-error" ? misplaced.message : "", /effects are only allowed below the effects attribute/);
    // The effect and the shell are not built, their inputs are; may-fail's closure and must-fail's own derivation are excused.
    assert.deepEqual(new Map(derivationNames(events)), new Map([
      [`hci-effect-dep-${NONCE}`, "counts"],
      [`hci-must-${NONCE}`, "must-fail"],
      [`hci-nested-${NONCE}`, "counts"],
      [`hci-dep-${NONCE}`, "counts"],
      [`hci-plain-${NONCE}`, "counts"],
      [`hci-shell-dep-${NONCE}`, "counts"],
      [`hci-flaky-${NONCE}`, "may-fail"],
      [`hci-may-${NONCE}`, "may-fail"],
    ]));
  });

  it("walks the handler a task names, and reports no config then", async () => {
    const repo = await gitRepo(dir, { "ci.nix": CI_NIX });
    const lint = await evaluate(repo, { handler: { kind: "onPush", name: "lint" } });
    assert.equal(lint.done?.status, "succeeded", lint.done?.error);
    assert.equal(lint.done?.config, undefined);
    assert.deepEqual(attributes(lint.events), [["lint", "regular", true]]);
    const nightly = await evaluate(repo, { handler: { kind: "onSchedule", name: "nightly" } });
    assert.deepEqual(attributes(nightly.events), [["n", "regular", true]]);
  });

  it("fails, naming the handler, when the named one is gone or a schedule cannot be read", async () => {
    const repo = await gitRepo(dir, { "ci.nix": CI_NIX });
    const gone = await evaluate(repo, { handler: { kind: "onPush", name: "deleted" } });
    assert.equal(gone.done?.status, "failed");
    assert.match(gone.done?.error ?? "", /herculesCI\.onPush has no handler named deleted \(it has: build, lint, off\)/);

    const badWhen = await gitRepo(dir, { "ci.nix": `{ herculesCI.onSchedule.weekly = { when.hour = 24; outputs = { }; }; }` });
    const bad = await evaluate(badWhen);
    assert.equal(bad.done?.status, "failed");
    assert.match(bad.done?.error ?? "", /^herculesCI\.onSchedule\.weekly\.when\.hour\.0: .*hour 0–23/);
  });

  it("keeps the legacy walk for a ci.nix without herculesCI: effects anywhere, no config", async () => {
    const repo = await gitRepo(dir, {
      "ci.nix": `let ${PRELUDE} in { e = (mk "legacy-effect-${NONCE}" "echo") // { isEffect = true; }; r = mk "legacy-r-${NONCE}" "echo > $out"; }`,
    });
    const { done, events } = await evaluate(repo);
    assert.equal(done?.status, "succeeded", done?.error);
    assert.equal(done?.config, undefined);
    assert.deepEqual(attributes(events), [
      ["e", "effect", false],
      ["r", "regular", true],
    ]);
  });
});

describe("herculesCI in a flake", () => {
  it("gives a flake without onPush Hercules' default job, limited to herculesCI.ciSystems, shells dependencies-only", async () => {
    const repo = await gitRepo(dir, {
      "flake.nix": `{
        outputs = { self }: let ${FLAKE_PRELUDE} in {
          herculesCI.ciSystems = [ "${system}" ];
          checks.${system}.t = mk "flake-t-${NONCE}" "echo > $out";
          checks.aarch64-linux.t = mk "flake-arm-${NONCE}" "echo > $out";
          devShells.${system}.default = (mk "flake-shell-${NONCE}" "echo > $out") // { phases = [ "nobuildPhase" ]; };
          effects = { ref, ... }: { hello = (mk "flake-effect-\${builtins.replaceStrings [ "/" ] [ "-" ] ref}-${NONCE}" "echo") // { isEffect = true; }; };
        };
      }`,
    });
    const { done, events } = await evaluate(repo, { systems: ["aarch64-linux", system] });
    assert.equal(done?.status, "succeeded", done?.error);
    assert.deepEqual(done?.config, { walked: "default", onPush: ["default"], onSchedule: [] });
    assert.deepEqual(attributes(events), [
      ["checks.x86_64-linux.t", "regular", true],
      ["devShells.x86_64-linux.default", "dependencies-only", false],
      ["effects.hello", "effect", false],
    ]);
    const effect = events.find((e) => e.kind === "attribute" && e.attributeType === "effect");
    assert.match(effect?.kind === "attribute" ? effect.drvPath : "", /flake-effect-refs-heads-main-/, "effects called with Hercules' arguments");
  });
});

describe("buildRoots", () => {
  // a ← b (regular), c (may-fail) ← a, m (must-fail) ← d, s (dependencies-only) ← e, x (effect) ← f
  const info = (drv: string, inputs: string[] = []): [string, DerivationInfo] => [drv, { drvPath: drv, system, requiredFeatures: [], inputDrvs: inputs, inputOutputs: {}, outputs: {} }];
  const infos = new Map([info("a"), info("b", ["a"]), info("c", ["a", "g"]), info("g"), info("m", ["d"]), info("d"), info("s", ["e"]), info("e"), info("x", ["f"]), info("f")]);
  const built = new Set(infos.keys());
  const walk = {
    attributes: [
      { path: ["b"], drvPath: "b", type: "regular" as const },
      { path: ["c"], drvPath: "c", type: "may-fail" as const },
      { path: ["m"], drvPath: "m", type: "must-fail" as const },
      { path: ["s"], drvPath: "s", type: "dependencies-only" as const },
      { path: ["x"], drvPath: "x", type: "effect" as const },
    ],
  };

  it("builds inputs instead of effects and shells, and excuses only what lenient attributes alone need", () => {
    const { reachable, excused } = buildRoots(walk, built, infos);
    assert.deepEqual([...reachable].sort(), ["a", "b", "c", "d", "e", "f", "g", "m"]);
    const why = Object.fromEntries([...reachable].sort().map((d) => [d, excused(d) ?? "counts"]));
    assert.deepEqual(why, { a: "counts", b: "counts", c: "may-fail", d: "counts", e: "counts", f: "counts", g: "may-fail", m: "must-fail" });
  });

  it("counts a must-fail derivation a regular attribute needs", () => {
    const both = { attributes: [...walk.attributes, { path: ["y"], drvPath: "y", type: "regular" as const }] };
    const withY = new Map([...infos, info("y", ["m"])]);
    const { excused } = buildRoots(both, new Set(withY.keys()), withY);
    assert.equal(excused("m"), undefined);
  });
});

describe("herculesCIArgs", () => {
  it("is Hercules' argument set, without a credential in a URL", () => {
    const args = herculesCIArgs({ ref: "refs/tags/v1", commit: "a".repeat(40), cloneUrl: "https://x-access-token:ghs_secret@github.com/acme/widgets.git", repository: "acme/widgets" }, "https://nimbus.example");
    assert.equal(args.tag, "v1");
    assert.equal(args.branch, null);
    assert.equal(args.shortRev, "aaaaaaa");
    assert.equal(args.primaryRepo.remoteHttpUrl, "https://github.com/acme/widgets.git");
    assert.equal(args.primaryRepo.webUrl, "https://github.com/acme/widgets");
    assert.equal(args.primaryRepo.forgeType, "github");
    assert.equal(args.herculesCI.apiBaseUrl, "https://nimbus.example");
    assert.ok(!JSON.stringify(args).includes("ghs_secret"));
  });
});

