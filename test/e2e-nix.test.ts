import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { DerivationPage } from "@nimbus/protocol";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { jobFinished, triggerJob } from "./support/jobs.ts";

// Real Nix end to end: a repository made here, triggered by the signed webhook, evaluated and
// built by three `nimbus agent` processes whose features differ.
const nonce = randomBytes(6).toString("hex");
const mk = (name: string, script: string, extra = "") => `
  ${name} = derivation {
    name = "${name}-${nonce}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" ${JSON.stringify(script)} ];
    ${extra}
  };`;

/** Nix's `${self.<name>}`: the path of another derivation, which makes it an input. */
const out = (name: string) => "$" + `{self.${name}}`;

const CI_NIX = [
  "let",
  "  self = {",
  mk("a", "echo a > $out"),
  mk("b", `echo b; echo ${out("a")} > $out`),
  mk("c", `echo c; echo ${out("b")} > $out`),
  mk("broken", "echo this fails on purpose; exit 7"),
  mk("afterBroken", `echo ${out("broken")} > $out`),
  mk("special", "echo special > $out", 'requiredSystemFeatures = [ "special" ];'),
  mk("onGpu", "echo gpu > $out", 'requiredSystemFeatures = [ "gpu" ];'),
  '    notEvaluable = throw "this attribute does not evaluate";',
  "  };",
  "in self",
].join("\n");

describe("end to end with real Nix", () => {
  let stack: TestStack;
  const agents: AgentProcess[] = [];
  let repo: { path: string; commit: string };
  const env = () => ({ NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("e2e");
    agents.push(await startAgentProcess(stack.url, token, `systemFeatures = []\n[labels]\nname = "plain"`));
    agents.push(await startAgentProcess(stack.url, token, `systemFeatures = ["special"]\n[labels]\nname = "special"`));
    agents.push(await startAgentProcess(stack.url, token, `systemFeatures = []\nmandatoryFeatures = ["gpu"]\n[labels]\nname = "gpu"`));
    await eventually(async () => ((await stack.api("GET", "/api/agents")).body.agents.length === 3 ? true : undefined), "three agents");
    repo = await makeGitRepo("widgets", { "ci.nix": CI_NIX });
  });
  after(async () => {
    for (const agent of agents) agent.child.kill("SIGKILL");
    await stack.cleanup();
  });

  const trigger = (path: string) => triggerJob(env(), path);
  const finished = (jobId: string) => jobFinished(stack, jobId, () => agents.map((a) => a.output().slice(-2000)).join("\n---\n"));
  const derivations = async (jobId: string) =>
    DerivationPage.parse((await stack.api("GET", `/api/jobs/${jobId}/derivations?limit=200`)).body).derivations;
  const nameOf = (drvPath: string) => drvPath.replace(/^.*?-(\w+)-[0-9a-f]{12}\.drv$/, "$1");

  it("builds every derivation on an agent that may build it and reports the verdict", async () => {
    const jobId = await trigger(repo.path);
    const job = await finished(jobId);
    assert.equal(job.status, "failed");
    assert.equal(job.commit, repo.commit);

    const byName = Object.fromEntries((await derivations(jobId)).map((d) => [nameOf(d.drvPath), d]));
    const status = Object.fromEntries(Object.entries(byName).map(([n, d]) => [n, d.status]));
    assert.deepEqual(status, {
      a: "succeeded",
      b: "succeeded",
      c: "succeeded",
      broken: "failed",
      afterBroken: "dependency-failed",
      special: "succeeded",
      onGpu: "succeeded",
    }, JSON.stringify(job.failures));
    const builder = (name: string) => byName[name]?.builtBy?.labels.name;
    assert.equal(builder("special"), "special", "only the agent with the feature builds it");
    assert.equal(builder("onGpu"), "gpu", "the mandatory-feature agent builds what requires it");
    for (const name of ["a", "b", "c", "broken"]) assert.notEqual(builder(name), "gpu", `${name} is not for the gpu agent`);
    assert.equal(byName.afterBroken?.builtBy, undefined, "the failure's dependent never built");

    const error = job.attributes.find((a) => a.path[0] === "notEvaluable");
    assert.equal(error?.status, "error");
    assert.match(error?.error ?? "", /this attribute does not evaluate/);
    assert.deepEqual(job.failures.map((f) => [nameOf(f.drvPath), f.status]).sort(), [
      ["afterBroken", "dependency-failed"],
      ["broken", "failed"],
    ]);
    const broken = job.failures.find((f) => f.status === "failed")!;
    assert.ok(broken.logTail?.some((line) => line.includes("this fails on purpose")), JSON.stringify(broken));

    const log = await runCli(["logs", byName.c!.drvPath], env());
    assert.equal(log.code, 0, log.stderr);
    const cli = await runCli(["job", jobId, "--wait"], env());
    assert.equal(cli.code, 1);
    assert.match(cli.stdout + cli.stderr, /broken/);
  });

  it("builds nothing when the same commit is triggered again", async () => {
    const before = await stack.scan("Derivations");
    const jobId = await trigger(repo.path);
    const job = await finished(jobId);
    assert.equal(job.status, "failed");
    assert.deepEqual(
      job.failures.map((f) => f.status).sort(),
      ["dependency-failed", "failed"],
      "the cached failure and its dependent, again",
    );
    const after = await stack.scan("Derivations");
    const attempts = (items: Record<string, unknown>[]) => items.map((d) => [d.drvPath, d.attempt, d.finishedAt]);
    assert.deepEqual(attempts(after), attempts(before), "no derivation was built again");
  });

  it("evaluates and builds a flake's checks", async () => {
    const flake = await makeGitRepo("flaky", {
      "flake.nix": `{
        outputs = { self }: {
          checks.x86_64-linux.hello = derivation {
            name = "flake-check-${nonce}";
            system = "x86_64-linux";
            builder = "/bin/sh";
            args = [ "-c" "echo flake > $out" ];
          };
        };
      }`,
    });
    const job = await finished(await trigger(flake.path));
    assert.equal(job.status, "succeeded", JSON.stringify(job));
    assert.deepEqual(job.attributes.map((a) => [a.path.join("."), a.status]), [["checks.x86_64-linux.hello", "succeeded"]]);
  });
});
