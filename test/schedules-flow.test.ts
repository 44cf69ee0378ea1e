import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { ScheduleList } from "@nimbus/protocol";
import { sweep } from "@nimbus/service";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { jobFinished, triggerJob } from "./support/jobs.ts";

// onSchedule through the local stack (docs/effects.md, "Schedules"): the default branch's
// evaluation makes the schedule; the sweeper, on an injected clock, starts its job once.
const nonce = randomBytes(6).toString("hex");
const mk = (name: string) => `derivation { name = "${name}-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`;
const ciNix = (hour: number) => `{
  herculesCI = {
    onPush.default.outputs.x = ${mk("pushed")};
    onSchedule.nightly = { when = { hour = ${hour}; minute = 15; }; outputs.n = ${mk("nightly")}; };
  };
}`;

describe("schedules through the local stack", () => {
  let stack: TestStack;
  let agent: AgentProcess;
  let repo: { path: string; commit: string };
  let token: string;
  const env = () => ({ NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    ({ token } = await stack.createToken("schedules"));
    await startAgent();
    repo = await makeGitRepo("sched", { "ci.nix": ciNix(3) });
    execFileSync("git", ["-C", repo.path, "branch", "feature"]);
  });
  after(async () => {
    agent?.child.kill("SIGKILL");
    await stack?.cleanup();
  });

  async function startAgent() {
    agent = await startAgentProcess(stack.url, token);
    await eventually(async () => ((await stack.api("GET", "/api/agents")).body.agents.length === 1 ? true : undefined), "the agent");
  }
  const trigger = (...args: string[]) => triggerJob(env(), repo.path, ...args);
  const finished = (jobId: string) => jobFinished(stack, jobId, () => agent.output().slice(-2000));
  const schedules = async () => ScheduleList.parse((await stack.api("GET", "/api/schedules")).body).schedules;

  it("makes the schedule from the default branch's push, with its next run in the API and the CLI", async () => {
    const pushed = await finished(await trigger("--ref", "main"));
    assert.equal(pushed.status, "succeeded");
    const [nightly, ...others] = await schedules();
    assert.deepEqual(others, []);
    assert.deepEqual([nightly?.repository, nightly?.name, nightly?.ref, nightly?.commit], ["sched", "nightly", "refs/heads/main", repo.commit]);
    const next = new Date(nightly!.nextRunAt!);
    assert.deepEqual([next.getUTCHours(), next.getUTCMinutes()], [3, 15]);
    assert.ok(next.getTime() > Date.now() && next.getTime() <= Date.now() + 24 * 3600_000, nightly!.nextRunAt);
    const shown = await runCli(["schedules"], env());
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`sched\\s+nightly\\s+${nightly!.nextRunAt!.replace(/[.]/g, "\\.")}`));
  });

  it("leaves schedules alone on a push to another branch", async () => {
    const before = await schedules();
    await finished(await trigger("--ref", "feature"));
    assert.deepEqual(await schedules(), before);
  });

  it("starts one job when the time comes, however many times were missed, and moves to the next time", async () => {
    const [nightly] = await schedules();
    const due = new Date(nightly!.nextRunAt!);
    // No agent while the sweeper's clock is days ahead: to it, a live agent has been silent for
    // three days (its connection is closed, its session ended, what it leased handed back or timed
    // out), which is not what this test is about and once failed the scheduled job in CI.
    agent.child.kill("SIGKILL");
    await agent.exited;
    assert.equal((await sweep(new Date(due.getTime() - 1))).schedulesRun, 0, "not yet");
    // The stack was down for three days: one run, not three.
    const back = new Date(due.getTime() + 3 * 24 * 3600_000 + 60_000);
    assert.equal((await sweep(back)).schedulesRun, 1);
    assert.equal((await sweep(back)).schedulesRun, 0, "once");
    const [after] = await schedules();
    assert.equal(after!.nextRunAt, new Date(Date.UTC(back.getUTCFullYear(), back.getUTCMonth(), back.getUTCDate() + 1, 3, 15)).toISOString());
    assert.equal(after!.lastRunAt, back.toISOString());
    await startAgent();
    const job = await finished(after!.lastJobId!);
    assert.equal(job.status, "succeeded");
    assert.deepEqual(job.handler, { kind: "onSchedule", name: "nightly" });
    assert.equal(job.trigger.event, "schedule");
    assert.equal(job.commit, repo.commit);
    assert.deepEqual(job.attributes.map((a) => a.path), [["n"]]);
  });

  it("follows the default branch's latest commit, and drops a schedule the branch no longer has", async () => {
    execFileSync("git", ["-C", repo.path, "checkout", "-q", "main"]);
    const { writeFileSync } = await import("node:fs");
    writeFileSync(`${repo.path}/ci.nix`, ciNix(5));
    execFileSync("git", ["-C", repo.path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "nightly at 5"]);
    const commit = execFileSync("git", ["-C", repo.path, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    await finished(await trigger("--ref", "main"));
    const [moved] = await schedules();
    assert.equal(moved!.commit, commit);
    assert.equal(new Date(moved!.nextRunAt!).getUTCHours(), 5, "a new `when`, a new next run");

    writeFileSync(`${repo.path}/ci.nix`, `{ herculesCI.onPush.default.outputs.x = ${mk("pushed")}; }`);
    execFileSync("git", ["-C", repo.path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "no schedule"]);
    await finished(await trigger("--ref", "main"));
    assert.deepEqual(await schedules(), []);
  });
});
