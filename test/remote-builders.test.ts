import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { AgentList, DerivationPage, JobView } from "@nimbus/protocol";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { startSshRemote, type SshRemote } from "./support/ssh-remote.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// Remote builders end to end (docs/agent.md, "Remote builders"): an agent whose Nix has a
// remote builder over SSH on loopback — Debian's sshd, a key made here, the remote on its own
// Nix store in a mount namespace — reports it, and a derivation needing a feature only that
// remote has is dispatched to that agent and built there.
const nonce = randomBytes(6).toString("hex");
const FEATURE = `remote-only-${nonce.slice(0, 6)}`;

describe("remote builders over SSH", () => {
  let stack: TestStack;
  let dir: string;
  let remote: SshRemote;
  const agents: AgentProcess[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "nimbus-remote-"));
    remote = await startSshRemote(dir, [FEATURE]);
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("remote");
    agents.push(await startAgentProcess(stack.url, token, `[labels]\nname = "plain"`));
    agents.push(
      await startAgentProcess(stack.url, token, `[labels]\nname = "with-remote"\n[nixSettings]\nbuilders = "${remote.machine}"`, remote.env),
    );
    await eventually(async () => ((await stack.api("GET", "/api/agents")).body.agents.length === 2 ? true : undefined), "two agents");
  });
  after(async () => {
    for (const agent of agents) agent.child.kill("SIGKILL");
    await stack?.cleanup();
    await remote?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reports the remote as a machine of its own, without its address", async () => {
    const { agents: listed } = AgentList.parse((await stack.api("GET", "/api/agents")).body);
    const withRemote = listed.find((a) => a.labels.name === "with-remote");
    assert.deepEqual(withRemote?.remoteBuilders, [{ systems: ["x86_64-linux"], supportedFeatures: [FEATURE], mandatoryFeatures: [] }]);
    assert.ok(!withRemote?.systemFeatures.includes(FEATURE), "not one flat list of features");
    assert.equal(listed.find((a) => a.labels.name === "plain")?.remoteBuilders, undefined);
    assert.ok(!JSON.stringify(listed).includes("127.0.0.1 x86_64-linux"));
  });

  it("dispatches a derivation needing the remote's feature to the agent that has the remote, which builds it there", async () => {
    const repo = await makeGitRepo("remote", {
      "ci.nix": `{
        remote = derivation { name = "on-remote-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo built remotely > $out" ]; requiredSystemFeatures = [ "${FEATURE}" ]; };
        local = derivation { name = "on-agent-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
      }`,
    });
    const triggered = await runCli(["trigger", repo.path], { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });
    assert.equal(triggered.code, 0, triggered.stderr);
    const jobId = triggered.stdout.trim();
    const job = await eventually(
      async () => {
        const view = JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);
        return ["succeeded", "failed", "cancelled"].includes(view.status) ? view : undefined;
      },
      `the job (agents said: ${agents.map((a) => a.output().slice(-1500)).join("\n---\n")}; sshd: ${remote.log()})`,
      120_000,
    );
    assert.equal(job.status, "succeeded", JSON.stringify(job.failures));
    const derivations = DerivationPage.parse((await stack.api("GET", `/api/jobs/${jobId}/derivations`)).body).derivations;
    const onRemote = derivations.find((d) => d.drvPath.includes(`on-remote-${nonce}`));
    assert.equal(onRemote?.builtBy?.labels.name, "with-remote", "only that agent may build it");
    const output = onRemote!.outputs.out!;
    assert.ok(existsSync(path.join(remote.store.root, "store", path.basename(output))), "built in the remote's own store");
    assert.ok(existsSync(output), "and copied back to the agent's");
  });
});
