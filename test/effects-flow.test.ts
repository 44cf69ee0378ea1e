import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { tables, type TableName } from "@nimbus/service/resource-specs";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { jobFinished, triggerJob } from "./support/jobs.ts";

// Effects through the local stack with real Nix and a real sandbox (docs/effects.md): run after
// the builds, with exactly the secrets whose condition holds, writing outside only where an
// agent's mountable lets them; never on another branch's job with the default branch's secret.
const nonce = randomBytes(6).toString("hex");
const SECRET = `nimbus-effect-secret-${randomBytes(12).toString("hex")}`;

function ciNix(agentDir: string) {
  // The effect copies what it was given to the mount, and looks for the agent's files (it must not find them).
  const script = [
    "set -u",
    // PATH is /path-not-set, as in a Nix build: an effect brings its own (mkEffect's stdenv does).
    "export PATH=/usr/bin:/bin",
    "cat \"$HERCULES_CI_SECRETS_JSON\" > /deploy/secrets-$BRANCH.json",
    "cat \"$tool\" > /deploy/tool-$BRANCH.txt",
    `(ls ${agentDir} 2>&1; cat ${agentDir}/work/session.json 2>&1; cat ${agentDir}/token.key 2>&1; ls /root 2>&1) > /deploy/probe-$BRANCH.txt`,
    "echo start >> /deploy/order-$BRANCH.log",
    "echo effect ran on $BRANCH",
    "sleep 1",
    "echo end >> /deploy/order-$BRANCH.log",
    "if [ \"$BRANCH\" = slow ]; then echo started > /deploy/slow-started.txt; sleep 60; echo late > /deploy/slow-late.txt; fi",
  ].join("\n");
  return `
{
  herculesCI = { branch, ... }: {
    onPush.default.outputs = {
      tool = derivation { name = "tool-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo the tool > $out" ]; };
      effects.deploy = derivation {
        name = "deploy-${nonce}";
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [ "-c" ${JSON.stringify(script)} ];
        tool = derivation { name = "tool-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo the tool > $out" ]; };
        BRANCH = branch;
        isEffect = true;
        secretsMap = builtins.toJSON { token = "deploy"; };
        __hci_effect_mounts = builtins.toJSON { "/deploy" = "target"; };
      };
    };
  };
}
`;
}

describe("effects through the local stack", () => {
  let stack: TestStack;
  let agent: AgentProcess;
  let target: string;
  let repo: { path: string; commit: string };
  const env = () => ({ NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("effects");
    target = await mkdtemp(join(tmpdir(), "nimbus-effect-target-"));
    const secrets = {
      deploy: { kind: "Secret", data: { token: SECRET }, condition: { and: ["isDefaultBranch", { isRepo: "fx" }] } },
      unused: { kind: "Secret", data: { other: `${SECRET}-unused` }, condition: true },
    };
    agent = await startAgentProcess(
      stack.url,
      token,
      [
        `secretsJsonPath = "secrets.json"`,
        `effectTimeoutSeconds = 120`,
        `[effectMountables.target]`,
        `source = "${target}"`,
        `readOnly = false`,
        `condition = "isDefaultBranch"`,
      ].join("\n"),
      {},
      { files: { "secrets.json": JSON.stringify(secrets) } },
    );
    await eventually(async () => ((await stack.api("GET", "/api/agents")).body.agents.length === 1 ? true : undefined), "the agent");
    repo = await makeGitRepo("fx", { "ci.nix": ciNix(agent.dir) });
    execFileSync("git", ["-C", repo.path, "branch", "feature"]);
    execFileSync("git", ["-C", repo.path, "branch", "slow"]);
  });
  after(async () => {
    agent?.child.kill("SIGKILL");
    await stack?.cleanup();
    if (target) await rm(target, { recursive: true, force: true });
  });

  const trigger = (...args: string[]) => triggerJob(env(), repo.path, ...args);
  const finished = (jobId: string) => jobFinished(stack, jobId, () => agent.output().slice(-3000));

  it("runs the effect after the builds on the default branch, with its secret, writing only through its mount", async () => {
    const job = await finished(await trigger("--ref", "main"));
    assert.equal(job.status, "succeeded", JSON.stringify({ effects: job.effects, failures: job.failures }));
    assert.equal(job.effects?.length, 1);
    const effect = job.effects![0]!;
    assert.deepEqual([effect.path, effect.status], [["effects", "deploy"], "succeeded"]);
    assert.ok(effect.startedAt && job.finishedAt && effect.finishedAt! <= job.finishedAt, "the job ends with its effect");
    const attribute = job.attributes.find((a) => a.path.join(".") === "effects.deploy");
    assert.deepEqual([attribute?.type, attribute?.status], ["effect", "not-built"]);

    const given = JSON.parse(await readFile(join(target, "secrets-main.json"), "utf8"));
    assert.deepEqual(given, { token: { kind: "Secret", data: { token: SECRET } } }, "exactly the secret it asked for");
    assert.equal((await readFile(join(target, "tool-main.txt"), "utf8")).trim(), "the tool", "its inputs were built first");
    const probe = await readFile(join(target, "probe-main.txt"), "utf8");
    assert.match(probe, new RegExp(`ls: cannot access '${agent.dir}': No such file or directory`));
    assert.doesNotMatch(probe, /"secret"|nimbus1\./, "neither the session nor the join token");
    assert.deepEqual((await readdir(target)).sort(), ["order-main.log", "probe-main.txt", "secrets-main.json", "tool-main.txt"], "it wrote only into its mount");
    assert.match(agent.output(), /running effect effects\.deploy/);
    const log = await stack.api("GET", `/api/jobs/${job.id}/effects/effects.deploy/log`);
    assert.equal(log.status, 200, JSON.stringify(log.body));
    assert.deepEqual([log.body.attribute, log.body.status], [["effects", "deploy"], "succeeded"]);
    assert.ok(log.body.lines.includes("effect ran on main"), JSON.stringify(log.body.lines));
    assert.equal((await stack.api("GET", `/api/jobs/${job.id}/effects/effects.nope/log`)).status, 404);
  });

  it("refuses the default branch's secret to a feature branch's effect, naming the secret and its condition, and fails the job", async () => {
    const job = await finished(await trigger("--ref", "feature"));
    assert.equal(job.status, "failed");
    const effect = job.effects?.[0];
    assert.equal(effect?.status, "failed");
    assert.match(effect?.error ?? "", /secret "deploy" is refused for \/fx at refs\/heads\/feature: its condition \{"and":\["isDefaultBranch",\{"isRepo":"fx"\}\]\} does not hold/);
    assert.deepEqual((await readdir(target)).filter((f) => f.includes("feature")), [], "the effect never ran");
    const shown = await runCli(["job", job.id], env());
    assert.match(shown.stdout, /effects:\n {2}effects\.deploy: failed on \S+ — secret "deploy" is refused/);
  });

  it("runs the effects of one branch one at a time, in job order", async () => {
    const first = await trigger("--ref", "main");
    const second = await trigger("--ref", "main");
    const [a, b] = [await finished(first), await finished(second)];
    assert.deepEqual([a.status, b.status], ["succeeded", "succeeded"], JSON.stringify([a.effects, b.effects]));
    const [ea, eb] = [a.effects![0]!, b.effects![0]!];
    assert.ok(ea.finishedAt! <= eb.startedAt!, `the later job's effect started after the earlier one's ended: ${JSON.stringify([ea, eb])}`);
    const order = (await readFile(join(target, "order-main.log"), "utf8")).trim().split("\n").map((l) => l.split(" ")[0]);
    assert.deepEqual(order, ["start", "end", "start", "end", "start", "end"], "never two at once");
  });

  it("runs no effect for a fork's job", async () => {
    const before = await readFile(join(target, "order-main.log"), "utf8");
    const jobId = await trigger("--ref", "main");
    // What an approved fork's job is (docs/github.md): marked before its evaluation reports.
    await stack.setAttributes("Jobs", { jobId }, { untrusted: true });
    const job = await finished(jobId);
    assert.equal(job.status, "succeeded");
    assert.deepEqual([job.effects?.[0]?.status, job.effects?.[0]?.error], ["skipped", "a fork's commit runs no effects"]);
    assert.equal(await readFile(join(target, "order-main.log"), "utf8"), before, "the effect never ran");
  });

  it("stops a running effect when its job is cancelled", async () => {
    const jobId = await trigger("--ref", "slow", "--default-branch", "slow");
    await eventually(async () => ((await readdir(target)).includes("slow-started.txt") ? true : undefined), "the slow effect to start", 60_000);
    const cancelled = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    const job = await finished(jobId);
    assert.equal(job.status, "cancelled");
    assert.equal(job.effects?.[0]?.status, "cancelled");
    await eventually(async () => (/task fx-\S+ cancelled by the service/.test(agent.output()) ? true : undefined), "the agent to stop it");
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!(await readdir(target)).includes("slow-late.txt"), "its process was killed");
  });

  it("keeps every secret out of the service: no table, API answer or log holds one", async () => {
    for (const table of Object.keys(tables) as TableName[]) {
      const items = JSON.stringify(await stack.scan(table));
      assert.ok(!items.includes(SECRET), `table ${table} holds a secret`);
    }
    const jobs = (await stack.api("GET", "/api/jobs")).body.jobs as { id: string }[];
    const views = await Promise.all(jobs.map(async (j) => (await stack.api("GET", `/api/jobs/${j.id}`)).body));
    const logs = await Promise.all(jobs.map(async (j) => (await stack.api("GET", `/api/jobs/${j.id}/effects/effects.deploy/log`)).body));
    const answers = JSON.stringify([jobs, views, logs, (await stack.api("GET", "/api/agents")).body]);
    assert.ok(!answers.includes(SECRET));
    assert.ok(!agent.output().includes(SECRET), "the agent's log");
  });
});
