import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { JobView } from "@nimbus/protocol";
import { killMachine, runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// Fast re-queue (docs/reliability.md): real agent processes, real Nix, the local stack with its
// sweeper on its default minute. An agent killed mid-build has the build moved to another agent
// by the disconnect check, not by the sweeper's session grace (3 minutes); an agent whose
// connection blinks keeps its build.

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
  return makeGitRepo("requeue", { "ci.nix": ciNix });
}

async function withStack(environment: Record<string, string>, test: (stack: TestStack, agents: AgentProcess[]) => Promise<void>) {
  const stack = await startTestStack({ environment });
  const agents: AgentProcess[] = [];
  try {
    await test(stack, agents);
  } finally {
    for (const a of agents) a.child.kill("SIGKILL");
    await stack.cleanup();
  }
}

async function setUp(stack: TestStack, seconds: number, agents: AgentProcess[]) {
  const { token } = await stack.createToken("requeue");
  const run = await runCli(["trigger", (await slowRepo(seconds)).path], { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });
  assert.equal(run.code, 0, run.stderr);
  const jobId = run.stdout.trim();
  const slow = async () => (await stack.scan("Derivations")).find((d) => String(d.drvPath).includes("-slow-"));
  const agent = async (name: string) => {
    const started = await startAgentProcess(stack.url, token, `[labels]\nname = "${name}"`);
    agents.push(started);
    return started;
  };
  const finished = (timeoutMs: number) =>
    eventually(
      async () => {
        const job = JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);
        return job.status === "evaluating" || job.status === "building" ? undefined : job;
      },
      `the job to finish (agents: ${agents.map((a) => a.output().slice(-1500)).join("\n---\n")})`,
      timeoutMs,
    );
  const building = () => eventually(async () => ((await slow())?.status === "building" ? true : undefined), "the slow build to start", 60_000);
  return { jobId, slow, agent, finished, building };
}

describe("fast re-queue with real agents", () => {
  it("moves the build of an agent killed mid-build to another agent, with the default settings", () =>
    withStack({}, async (stack, agents) => {
      const { slow, agent, finished, building } = await setUp(stack, 8, agents);
      const doomed = await agent("doomed");
      await building();
      await killMachine(doomed);
      const killedAt = Date.now();
      await agent("rescuer");

      // The default disconnect grace is 20 s and the build takes 8: well inside the sweeper's
      // 3-minute session grace, which would move it only after about 4 minutes.
      const job = await finished(60_000);
      assert.equal(job.status, "succeeded");
      const drv = await slow();
      assert.equal((drv?.builtBy as { labels: { name: string } }).labels.name, "rescuer");
      assert.equal(drv?.retries, 1, "handed back once, as a retry");
      console.log(`fast re-queue: the rescuer finished the build ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    }));

  it("keeps the build of an agent whose connection closes and that is back within the grace", () =>
    withStack({ NIMBUS_DISCONNECT_GRACE_MS: "2000" }, async (stack, agents) => {
      const { slow, agent, finished, building } = await setUp(stack, 6, agents);
      const steady = await agent("steady");
      await building();
      const [connectionId] = stack.gateway.connectionIds();
      await agent("bystander");
      // The gateway closes the socket (with $disconnect); the agent reconnects on its own.
      stack.gateway.closeConnection(connectionId!, 1001);
      await eventually(async () => (stack.gateway.connectionIds().length === 2 && !stack.gateway.connectionIds().includes(connectionId!) ? true : undefined), "the agent to reconnect");

      const job = await finished(60_000);
      assert.equal(job.status, "succeeded");
      const drv = await slow();
      assert.equal(drv?.attempt, 0, "never re-queued");
      assert.equal((drv?.builtBy as { labels: { name: string } }).labels.name, "steady");
      const starts = steady.output().split("\n").filter((line) => line.includes("building") && line.includes("-slow-"));
      assert.equal(starts.length, 1, `the build started once:\n${starts.join("\n")}`);
    }));
});
