import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { JobView } from "@nimbus/protocol";
import { killMachine, runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// Real Nix, real agent processes: a slow build survives its agent being killed (another agent
// finishes it) and its connection being cut (the same agent finishes it, never restarting it).
const TIMING = {
  NIMBUS_HEARTBEAT_INTERVAL_MS: "500",
  NIMBUS_SESSION_GRACE_MS: "2500",
  NIMBUS_RETRY_BASE_MS: "200",
};

async function slowRepo(seconds: number) {
  const nonce = randomBytes(6).toString("hex");
  const ciNix = `{
  slow = derivation {
    name = "slow-${nonce}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo started; /bin/sleep ${seconds}; echo finished > $out" ];
  };
}`;
  return makeGitRepo("slow", { "ci.nix": ciNix });
}

async function setUp(stack: TestStack) {
  const { token } = await stack.createToken("resilience");
  const env = { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir };
  const trigger = async (path: string) => {
    const result = await runCli(["trigger", path], env);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  };
  const slowDerivation = async () => (await stack.scan("Derivations")).find((d) => String(d.drvPath).includes("-slow-"));
  const finished = (jobId: string, agents: AgentProcess[]) =>
    eventually(
      async () => {
        const job = JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);
        return job.status === "evaluating" || job.status === "building" ? undefined : job;
      },
      `the job to finish (agents: ${agents.map((a) => a.output().slice(-1500)).join("\n---\n")})`,
      90_000,
    );
  return { token, trigger, slowDerivation, finished };
}

/** A fresh stack with the short timing above for one test; every agent started is killed after. */
async function withStack(test: (stack: TestStack, agents: AgentProcess[]) => Promise<void>) {
  const stack = await startTestStack({ sweepIntervalMs: 300, environment: TIMING });
  const agents: AgentProcess[] = [];
  try {
    await test(stack, agents);
  } finally {
    for (const a of agents) a.child.kill("SIGKILL");
    await stack.cleanup();
  }
}

describe("a slow real build", () => {
  it("whose agent is killed is finished by another agent, and the job succeeds", () =>
    withStack(async (stack, agents) => {
      const { token, trigger, slowDerivation, finished } = await setUp(stack);
      const doomed = await startAgentProcess(stack.url, token, `[labels]\nname = "doomed"`);
      agents.push(doomed);
      const jobId = await trigger((await slowRepo(4)).path);
      await eventually(async () => ((await slowDerivation())?.status === "building" ? true : undefined), "the slow build to start", 60_000);
      // Its machine dies, Nix with it: an agent killed alone leaves its nix-store building into the shared store, and
      // the rescuer's evaluation (the doomed agent may die before its evaluation-done) would then find the output there.
      await killMachine(doomed);

      const rescuer = await startAgentProcess(stack.url, token, `[labels]\nname = "rescuer"`);
      agents.push(rescuer);
      const job = await finished(jobId, agents);
      assert.equal(job.status, "succeeded");
      const drv = await slowDerivation();
      assert.equal(drv?.status, "succeeded", JSON.stringify({ job, derivation: drv, rows: await stack.scan("JobDerivations") }, null, 1));
      assert.equal((drv?.builtBy as { labels: { name: string } }).labels.name, "rescuer");
      assert.equal(drv?.attempt, 1, "re-queued once, after the killed agent's session ran out of grace");
    }));

  it("whose connection is cut is finished by the same agent after it reconnects, without starting again", () =>
    withStack(async (stack, agents) => {
      const { token, trigger, slowDerivation, finished } = await setUp(stack);
      const agent = await startAgentProcess(stack.url, token, `[labels]\nname = "steady"`);
      agents.push(agent);
      const jobId = await trigger((await slowRepo(4)).path);
      await eventually(async () => ((await slowDerivation())?.status === "building" ? true : undefined), "the slow build to start", 60_000);
      const [connectionId] = stack.gateway.connectionIds();
      // The gateway loses the socket without a $disconnect, as API Gateway may.
      stack.gateway.dropConnection(connectionId!);
      await eventually(
        async () => (stack.gateway.connectionIds().some((id) => id !== connectionId) ? true : undefined),
        "the agent to reconnect",
      );

      const job = await finished(jobId, agents);
      assert.equal(job.status, "succeeded");
      const drv = await slowDerivation();
      assert.equal(drv?.attempt, 0, "never re-queued");
      assert.equal((drv?.builtBy as { labels: { name: string } }).labels.name, "steady");
      const starts = agent.output().split("\n").filter((line) => line.includes("building") && line.includes("-slow-"));
      assert.equal(starts.length, 1, `the build started once:\n${starts.join("\n")}`);
    }));
});
