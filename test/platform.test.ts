import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { AgentList, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ServiceInfo } from "@nimbus/protocol";
import { sendToAgent } from "@nimbus/service";
import { handler as sweep } from "../functions/sweeper.ts";
import { startAgentProcess, runCli, type AgentProcess } from "./support/agent-process.ts";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

/** What this machine's Nix reports; the agent must pass it on unchanged. */
function nixReports() {
  const config = JSON.parse(
    execFileSync("nix", ["--extra-experimental-features", "nix-command", "show-config", "--json"], { encoding: "utf8" }),
  );
  return {
    systems: [config.system.value, ...config["extra-platforms"].value.filter((s: string) => s !== config.system.value)],
    features: config["system-features"].value as string[],
  };
}

describe("platform: tokens, connections and agents through the local stack", () => {
  let stack: TestStack;
  const agents: AgentProcess[] = [];

  before(async () => {
    stack = await startTestStack();
  });
  after(async () => {
    for (const a of agents) a.child.kill("SIGKILL");
    await stack.cleanup();
  });

  const listAgents = async () => AgentList.parse((await stack.api("GET", "/api/agents")).body).agents;

  it("serves service-info without auth and points agents at the socket", async () => {
    const { status, body } = await stack.api("GET", "/api/service-info", undefined, null);
    assert.equal(status, 200);
    const info = ServiceInfo.parse(body);
    assert.equal(info.protocolVersion, PROTOCOL_VERSION);
    assert.equal(info.agentSocketUrl, stack.agentSocketUrl);
  });

  it("refuses the JSON API without the admin token", async () => {
    for (const token of [null, "nope", `${stack.adminToken}x`]) {
      const { status, body } = await stack.api("GET", "/api/agents", undefined, token);
      assert.equal(status, 401);
      assert.equal(body.error.code, "unauthorized");
    }
  });

  it("creates, lists and revokes tokens, storing only hashes", async () => {
    const created = await stack.createToken("laptop");
    assert.match(created.token, /^nimbus1\.[0-9a-f]{20}\./);
    const listed = (await stack.api("GET", "/api/tokens")).body.tokens;
    assert.ok(listed.some((t: any) => t.id === created.id && t.name === "laptop" && !t.revokedAt));
    const secret = created.token.split(".")[2]!;
    assert.ok(!JSON.stringify(await stack.scan("Tokens")).includes(secret), "the secret is not stored");
    const revoked = await stack.api("DELETE", `/api/tokens/${created.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt);
    const again = await stack.api("DELETE", `/api/tokens/${created.id}`);
    assert.equal(again.body.revokedAt, revoked.body.revokedAt, "revoking twice keeps the first date");
  });

  it("answers bad token requests with clear errors and changes nothing", async () => {
    const before = await stack.scan("Tokens");
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ["POST", "/api/tokens", "{not json", 400, /not valid JSON/],
      ["POST", "/api/tokens", { name: "" }, 400, /name/],
      ["POST", "/api/tokens", { name: "x".repeat(101) }, 400, /name/],
      ["POST", "/api/tokens", { name: "a", admin: true }, 400, /admin/],
      ["DELETE", "/api/tokens/0123456789abcdef0123", undefined, 404, /no token with id/],
      ["DELETE", "/api/tokens/not-an-id", undefined, 400, /20 hex characters/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const answer = await stack.api(method, path, body);
      assert.equal(answer.status, status, `${method} ${path} ${JSON.stringify(body)}`);
      assert.match(answer.body.error.message, message);
    }
    assert.deepEqual(await stack.scan("Tokens"), before);
  });

  it("refuses missing, malformed, unknown and revoked tokens at $connect, leaving no trace", async () => {
    const revoked = await stack.createToken("to-revoke");
    await stack.api("DELETE", `/api/tokens/${revoked.id}`);
    const unknown = `nimbus1.${"0".repeat(20)}.${"A".repeat(43)}`;
    const tokensBefore = await stack.scan("Tokens");
    for (const token of [undefined, "garbage", unknown, revoked.token]) {
      await assert.rejects(RawAgent.connect(stack.agentSocketUrl, token), (e: any) => e.status === 401, String(token));
    }
    assert.deepEqual(await stack.scan("Connections"), []);
    assert.deepEqual(await stack.scan("Tokens"), tokensBefore);
  });

  it("lists an agent with the systems and features its Nix reports", async () => {
    const { token } = await stack.createToken("agent-1");
    const agent = await startAgentProcess(stack.url, token, `mandatoryFeatures = ["gpu"]\n[labels]\nrack = "r1"`);
    agents.push(agent);
    const listed = await eventually(async () => (await listAgents()).find((a) => a.labels.rack === "r1"), `the agent in /api/agents (agent output: ${agent.output()})`);
    const nix = nixReports();
    assert.deepEqual(listed.systems, nix.systems);
    assert.deepEqual(listed.systemFeatures, nix.features);
    assert.deepEqual(listed.mandatoryFeatures, ["gpu"]);
    assert.equal(listed.concurrentTasks, 3);
    assert.equal(listed.runningTasks, 0);
    assert.match(listed.nixVersion, /^2\.\d+/);

    const cli = await runCli(["agents", "--json"], { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.ok(AgentList.parse(JSON.parse(cli.stdout)).agents.some((a) => a.connectionId === listed.connectionId));
  });

  it("removes an agent killed with SIGKILL from the list", async () => {
    const { token } = await stack.createToken("agent-2");
    const agent = await startAgentProcess(stack.url, token, `[labels]\nrack = "r2"`);
    agents.push(agent);
    await eventually(async () => (await listAgents()).find((a) => a.labels.rack === "r2"), "the second agent");
    agent.child.kill("SIGKILL");
    await agent.exited;
    await eventually(async () => ((await listAgents()).some((a) => a.labels.rack === "r2") ? undefined : true), "the killed agent to disappear");
  });

  it("answers malformed and unknown messages with errors and changes nothing", async () => {
    const { token } = await stack.createToken("raw");
    const early = await RawAgent.connect(stack.agentSocketUrl, token);
    const beat = { type: "heartbeat", sentAt: new Date().toISOString() };
    assert.deepEqual(await early.request(beat).then((m) => m.type === "error" && m.code), "hello-required");
    const raw = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await raw.request(hello({ hostname: "raw-1" }))).type, "welcome");

    const connections = await stack.scan("Connections");
    const cases: Array<[unknown, string]> = [
      ["this is not json", "malformed-json"],
      ["[]", "invalid-message"],
      [{ kind: "hello" }, "invalid-message"],
      [{ type: "steal-build", drv: "/nix/store/x.drv" }, "unknown-type"],
      [{ type: "heartbeat" }, "invalid-message"],
      [{ ...hello(), agent: { ...hello().agent, concurrentTasks: -1 } }, "invalid-message"],
      [hello({ hostname: "raw-1-again" }), "duplicate-hello"],
    ];
    for (const [message, code] of cases) {
      const reply = await raw.request(message);
      assert.equal(reply.type, "error", JSON.stringify(message));
      assert.equal(reply.type === "error" && reply.code, code, JSON.stringify(message));
      assert.ok(reply.type === "error" && reply.message.length > 10);
    }
    assert.deepEqual(await stack.scan("Connections"), connections, "no message changed a connection");
    assert.equal(raw.closed, undefined, "errors do not end the connection");
    assert.equal((await raw.request(beat)).type, "heartbeat-ack");
    early.close();
    raw.close();
  });

  it("refuses an agent of another protocol version and ends its connection", async () => {
    const { token } = await stack.createToken("old-agent");
    const raw = await RawAgent.connect(stack.agentSocketUrl, token);
    const reply = await raw.request({ ...hello({ hostname: "old" }), protocolVersion: PROTOCOL_VERSION + 1 });
    assert.equal(reply.type === "error" && reply.code, "protocol-version");
    assert.equal(reply.type === "error" && reply.fatal, true);
    await raw.waitClosed();
    await eventually(async () => ((await stack.scan("Connections")).some((c: any) => c.agent?.hostname === "old") ? undefined : true), "no row for the refused agent");
  });

  it("closes a connection that sends an oversize message with 1009", async () => {
    const { token } = await stack.createToken("big");
    const raw = await RawAgent.connect(stack.agentSocketUrl, token);
    await raw.request(hello({ hostname: "big" }));
    raw.send("x".repeat(MAX_MESSAGE_BYTES + 1));
    assert.equal((await raw.waitClosed()).code, 1009);
    await eventually(async () => ((await listAgents()).some((a) => a.hostname === "big") ? undefined : true), "the oversize agent to go");
  });

  it("removes a gone connection at the next PostToConnection, and the sweeper removes silent ones", async () => {
    const { token } = await stack.createToken("ghost");
    const ghosts = [await RawAgent.connect(stack.agentSocketUrl, token), await RawAgent.connect(stack.agentSocketUrl, token)];
    const ids: string[] = [];
    for (const [i, ghost] of ghosts.entries()) {
      const welcome = await ghost.request(hello({ hostname: `ghost-${i}` }));
      assert.equal(welcome.type, "welcome");
      if (welcome.type === "welcome") ids.push(welcome.connectionId);
    }
    // The gateway loses both sockets without a $disconnect, as API Gateway may.
    for (const id of ids) stack.gateway.dropConnection(id);
    assert.equal((await listAgents()).filter((a) => a.hostname.startsWith("ghost-")).length, 2);

    assert.equal(await sendToAgent(ids[0]!, { type: "heartbeat-ack", sentAt: new Date().toISOString() }), false);
    assert.deepEqual((await listAgents()).filter((a) => a.hostname.startsWith("ghost-")).map((a) => a.hostname), ["ghost-1"]);

    const report = await sweep();
    assert.equal(report.connectionsRemoved, 0, "a connection seen recently is not checked yet");
    await stack.setAttributes("Connections", { connectionId: ids[1]! }, { lastSeen: new Date(Date.now() - 10 * 60_000).toISOString() });
    assert.equal((await sweep()).connectionsRemoved, 1);
    assert.deepEqual((await listAgents()).filter((a) => a.hostname.startsWith("ghost-")), []);
  });

  it("disconnects an agent whose token is revoked", async () => {
    const created = await stack.createToken("revoked-live");
    const raw = await RawAgent.connect(stack.agentSocketUrl, created.token);
    await raw.request(hello({ hostname: "revoked-live" }));
    assert.equal((await stack.api("DELETE", `/api/tokens/${created.id}`)).status, 200);
    await raw.waitClosed();
    assert.ok(!(await listAgents()).some((a) => a.hostname === "revoked-live"));
  });

  it("prints a new token alone on stdout with `nimbus token create`", async () => {
    const env = { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir };
    const created = await runCli(["token", "create", "--name", "cli"], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^nimbus1\.[0-9a-f]{20}\.[\w-]{43}\n$/);
    const listed = await runCli(["token", "list", "--json"], env);
    assert.ok(JSON.parse(listed.stdout).tokens.some((t: any) => t.name === "cli"));
    const bad = await runCli(["agents"], { ...env, NIMBUS_TOKEN: "wrong" });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /API token refused/);
    assert.equal(bad.stdout, "");
  });
});
