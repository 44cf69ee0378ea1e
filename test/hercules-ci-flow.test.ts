import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { JobView } from "@nimbus/protocol";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { jobFinished, triggerJob } from "./support/jobs.ts";

// herculesCI through the local stack with real Nix (docs/effects.md): one job per onPush handler,
// each reported on its own, and the verdict under Hercules' attribute types.
const nonce = randomBytes(6).toString("hex");
const mk = (name: string, script: string) =>
  `derivation { name = "${name}-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; }`;

const ciNix = (mustFailScript: string) => `
let
  shellInput = ${mk("shell-input", "echo > $out")};
in {
  herculesCI = { branch, ... }: {
    onPush.default.outputs = {
      plain = ${mk("plain", "echo > $out")};
      knownBroken = ${mk("known-broken", mustFailScript)} // { requireFailure = true; };
      flaky = ${mk("flaky", "echo flaky on purpose; exit 3")} // { ignoreFailure = true; };
      shell = derivation { name = "shell-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "exit 9" ]; inherit shellInput; } // { buildDependenciesOnly = true; };
    };
    onPush.lint.outputs.lint = ${mk("lint", "echo > $out")};
  };
}
`;

describe("herculesCI jobs through the local stack", () => {
  let stack: TestStack;
  let agent: AgentProcess;
  const env = () => ({ NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("hci");
    agent = await startAgentProcess(stack.url, token);
    await eventually(async () => ((await stack.api("GET", "/api/agents")).body.agents.length === 1 ? true : undefined), "the agent");
  });
  after(async () => {
    agent?.child.kill("SIGKILL");
    await stack?.cleanup();
  });

  const trigger = (path: string) => triggerJob(env(), path);
  const finished = (jobId: string) => jobFinished(stack, jobId, () => agent.output().slice(-3000));
  const byPath = (job: JobView) => Object.fromEntries(job.attributes.map((a) => [a.path.join("."), a]));

  it("makes one job per onPush handler and judges each attribute by its type", async () => {
    const repo = await makeGitRepo("hci", { "ci.nix": ciNix("echo this must fail but does not yet; exit 1") });
    const first = await trigger(repo.path);
    const job = await finished(first);
    assert.equal(job.status, "succeeded", JSON.stringify({ failures: job.failures, attributes: job.attributes }));
    assert.deepEqual(job.handler, { kind: "onPush", name: "default" });
    const attrs = byPath(job);
    assert.equal(attrs.plain?.status, "succeeded");
    assert.deepEqual([attrs.knownBroken?.type, attrs.knownBroken?.status, attrs.knownBroken?.problem], ["must-fail", "failed", undefined]);
    assert.deepEqual([attrs.flaky?.type, attrs.flaky?.status], ["may-fail", "failed"]);
    assert.deepEqual([attrs.shell?.type, attrs.shell?.status], ["dependencies-only", "not-built"]);
    assert.deepEqual(
      job.failures.map((f) => [f.drvPath.replace(/^\/nix\/store\/[a-z0-9]+-(.*)-[0-9a-f]{12}\.drv$/, "$1"), f.excused]).sort(),
      [["flaky", "may-fail"], ["known-broken", "must-fail"]],
    );
    // The shell's input was built, the shell itself (which would fail) never was.
    const derivations = (await stack.api("GET", `/api/jobs/${first}/derivations?limit=100`)).body.derivations as { drvPath: string; status: string }[];
    assert.ok(derivations.some((d) => d.drvPath.includes(`shell-input-${nonce}`) && d.status === "succeeded"), JSON.stringify(derivations));
    assert.ok(!derivations.some((d) => d.drvPath.includes(`-shell-${nonce}`)), "the dependencies-only attribute is not built");

    const lint = await finished(`${first}-1`);
    assert.equal(lint.status, "succeeded");
    assert.deepEqual(lint.handler, { kind: "onPush", name: "lint" });
    assert.deepEqual(lint.attributes.map((a) => a.path), [["lint"]]);
    assert.equal(lint.commit, job.commit);

    const shown = await runCli(["job", `${first}-1`], env());
    assert.match(shown.stdout, /handler\s+onPush\.lint/);
    const listed = (await stack.api("GET", "/api/jobs")).body.jobs.map((j: { id: string }) => j.id);
    assert.deepEqual(listed.filter((id: string) => id.startsWith(first)).sort(), [first, `${first}-1`], "exactly one more job, once");
  });

  it("fails the job when a must-fail attribute builds, saying why", async () => {
    const repo = await makeGitRepo("hci-fixed", { "ci.nix": ciNix("echo fixed > $out") });
    const job = await finished(await trigger(repo.path));
    assert.equal(job.status, "failed");
    const broken = byPath(job).knownBroken;
    assert.equal(broken?.status, "succeeded");
    assert.match(broken?.problem ?? "", /must fail \(requireFailure\), but it built/);
    const shown = await runCli(["job", job.id], env());
    assert.match(shown.stdout, /knownBroken: it must fail/);
  });

  it("evaluates a rerun of a handler's job for that handler alone", async () => {
    const repo = await makeGitRepo("hci-rerun", { "ci.nix": ciNix("exit 1") });
    const first = await trigger(repo.path);
    await finished(first);
    const lint = await finished(`${first}-1`);
    const rerun = await stack.api("POST", `/api/jobs/${lint.id}/rerun`, {});
    assert.equal(rerun.status, 201, JSON.stringify(rerun.body));
    const again = await finished(rerun.body.jobId);
    assert.deepEqual(again.handler, { kind: "onPush", name: "lint" });
    assert.deepEqual(again.attributes.map((a) => a.path), [["lint"]]);
    const listed = (await stack.api("GET", "/api/jobs")).body.jobs.map((j: { id: string }) => j.id);
    assert.ok(!listed.includes(`${rerun.body.jobId}-1`), "a rerun makes no jobs for other handlers");
  });

});
