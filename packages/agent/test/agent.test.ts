import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { sessionCacheKeyFromSecret } from "@nimbus/cache";
import { AgentInfo, Heartbeat, NIMBUS_VERSION, PROTOCOL_VERSION } from "@nimbus/protocol";
import {
  AgentConfigError,
  type AgentExit,
  type AgentErrorEvent,
  detectNix,
  type NixInfo,
  loadAgentConfig,
  type RunningAgent,
  type StartAgentOptions,
  startAgent,
} from "../src/index.ts";
import { FakeService, type FakeServiceOptions, GOOD_TOKEN, memoryLog } from "./fake-service.ts";
import { ManualClock } from "./manual-clock.ts";
import { gitRepo } from "./task-fixtures.ts";

let nix: NixInfo;
let dir: string;
/** Agents to stop after each test, with the manual clock they run on, if any. */
const running: { agent: RunningAgent; clock?: ManualClock }[] = [];
const services: FakeService[] = [];

before(async () => {
  nix = await detectNix();
  dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-agent-test-"));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map(({ agent, clock }) => stopAgent(agent, clock)));
  await Promise.all(services.splice(0).map((s) => s.close()));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Stops an agent; one on a manual clock gets its time moved on until it has left. */
async function stopAgent(agent: RunningAgent, clock: ManualClock | undefined): Promise<void> {
  const stopping = agent.stop();
  if (clock !== undefined) {
    while (!(await settled(stopping))) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      clock.advance(1_000);
    }
  }
  await stopping;
}

/** A fake service, an agent.toml pointing at it, and the agent started from that file. */
async function setup(
  serviceOptions: FakeServiceOptions = {},
  extraToml = "",
  agentOptions: StartAgentOptions = {},
  token = GOOD_TOKEN,
) {
  const service = await FakeService.start(serviceOptions);
  services.push(service);
  const configDir = await mkdtemp(path.join(dir, "agent-"));
  await writeFile(path.join(configDir, "token.key"), `${token}\n`);
  await writeFile(
    path.join(configDir, "agent.toml"),
    [
      `apiBaseUrl = "${service.apiBaseUrl}"`,
      `clusterJoinTokenPath = "token.key"`,
      // Short unless the test sets its own.
      extraToml.includes("heartbeatIntervalSeconds") ? "" : `heartbeatIntervalSeconds = 0.05`,
      // No test here runs tasks; leaving while the service is down must not take 10 s.
      extraToml.includes("shutdownTimeoutSeconds") ? "" : `shutdownTimeoutSeconds = 0.5`,
      // Offline: only the configured caches, unless a test is about the machine's substituters.
      extraToml.includes("machineSubstituters") ? "" : `machineSubstituters = false`,
      // The fake service serves no built-in cache, unless a test is about it.
      extraToml.includes("builtinCache") ? "" : `builtinCache = false`,
      extraToml,
    ].join("\n"),
  );
  const config = await loadAgentConfig(path.join(configDir, "agent.toml"));
  const memory = memoryLog();
  const agent = await startAgent(config, {
    nix,
    log: memory.log,
    backoff: { initialMs: 20, maxMs: 200 },
    ...agentOptions,
  });
  running.push({ agent, clock: agentOptions.clock instanceof ManualClock ? agentOptions.clock : undefined });
  return { service, agent, config, lines: memory.lines, configDir };
}

function exitWithin(agent: RunningAgent, ms = 5_000): Promise<AgentExit> {
  return Promise.race([
    agent.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("agent did not exit")), ms).unref()),
  ]);
}

/** Real time, as a guard only: what a test waits for happens without the agent's clock moving. */
function withinRealSeconds<T>(promise: Promise<T>, what: string, seconds = 10): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${seconds} s`)), seconds * 1000).unref()),
  ]);
}

/** Whether `promise` has settled (after letting pending callbacks run). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("hello", () => {
  it("with the built-in cache (the default) names it, reads it at {apiBaseUrl}/cache, and keeps only the session's read key in the private netrc", async () => {
    const { service, agent } = await setup({}, "builtinCache = true", { nix: undefined });
    await service.until(() => agent.connected(), "the agent to be welcomed");
    const hello = service.hellos[0]!;
    assert.deepEqual(hello.agent.caches, [{ name: "nimbus", kind: "NimbusCache", publicKeys: [], push: true, pull: true }]);
    assert.deepEqual(hello.agent.substituters, [`${service.apiBaseUrl}/cache`]);
    assert.deepEqual(hello.agent.pushCaches, ["nimbus"]);
    const secret = (JSON.parse(await readFile(agent.sessionPath, "utf8")) as { secret: string }).secret;
    const netrc = await readFile(path.join(agent.privateDirectory, "netrc"), "utf8");
    assert.equal(netrc, `machine 127.0.0.1 login ${agent.sessionId} password ${sessionCacheKeyFromSecret(secret)}\n`);
    assert.ok(!netrc.includes(secret), "the session secret itself never goes in the netrc");
    assert.equal((await stat(path.join(agent.privateDirectory, "netrc"))).mode & 0o777, 0o600);
  });

  it("refuses a binary-caches.json cache named like the built-in one, unless builtinCache = false", async () => {
    const configDir = await mkdtemp(path.join(dir, "reserved-"));
    const caches = JSON.stringify({ nimbus: { kind: "NixCache", storeURI: "file:///tmp/x", publicKeys: ["k-1:LbQJGV7WTPsyg5uoWndRPGFS0wpckGTGhO1rvTGsfQw="] } });
    await writeFile(path.join(configDir, "binary-caches.json"), caches, { mode: 0o600 });
    await writeFile(path.join(configDir, "token.key"), `${GOOD_TOKEN}\n`);
    const toml = (extra: string) => `apiBaseUrl = "http://127.0.0.1:9"\nclusterJoinTokenPath = "token.key"\nmachineSubstituters = false\nshutdownTimeoutSeconds = 0.5\nbinaryCachesPath = "binary-caches.json"\n${extra}`;
    await writeFile(path.join(configDir, "agent.toml"), toml(""));
    await assert.rejects(startAgent(await loadAgentConfig(path.join(configDir, "agent.toml")), { nix, log: () => {} }), /cache "nimbus": this name is the built-in cache's/);
    await writeFile(path.join(configDir, "agent.toml"), toml("builtinCache = false"));
    const agent = await startAgent(await loadAgentConfig(path.join(configDir, "agent.toml")), { nix, log: () => {}, backoff: { initialMs: 20, maxMs: 100 } });
    assert.deepEqual(agent.info.caches?.map((c) => c.name), ["nimbus"]);
    assert.equal(agent.info.caches?.[0]?.kind, "NixCache");
    await agent.stop();
  });

  it("reports what the real Nix says, with the bearer token, and gets welcomed", async () => {
    const { service, agent } = await setup({}, `concurrentTasks = 3\nmandatoryFeatures = ["gpu"]\n[labels]\nteam = "infra"\nrack = 4`, {
      nix: undefined,
    });
    await service.until(() => agent.connected(), "the agent to be welcomed");
    const hello = service.hellos[0]!;
    assert.equal(hello.protocolVersion, PROTOCOL_VERSION);
    assert.deepEqual(hello.tasksInProgress, []);
    assert.ok(hello.agent.systems.includes("x86_64-linux"), `systems: ${hello.agent.systems.join(" ")}`);
    assert.equal(hello.agent.systems[0], nix.systems[0], "Nix's own system comes first");
    assert.deepEqual(hello.agent.systems, nix.systems);
    assert.deepEqual(hello.agent.systemFeatures, nix.systemFeatures);
    assert.deepEqual(hello.agent.substituters, [], "machineSubstituters = false and no binary caches: none");
    assert.match(hello.agent.nixVersion, /^\d+\.\d+/);
    assert.equal(hello.agent.hostname, os.hostname());
    assert.equal(hello.agent.agentVersion, NIMBUS_VERSION);
    assert.equal(hello.agent.concurrentTasks, 3);
    assert.deepEqual(hello.agent.mandatoryFeatures, ["gpu"]);
    assert.deepEqual(hello.agent.labels, { team: "infra", rack: 4 });
    assert.deepEqual(hello.agent.pushCaches, []);
    AgentInfo.parse(hello.agent);
    assert.equal(service.connections[0]!.authorization, `Bearer ${GOOD_TOKEN}`);
    assert.equal(agent.connectionId(), "conn-1");
    assert.deepEqual(agent.info, hello.agent);
    assert.equal(hello.session.id, agent.sessionId);
  });

  it("uses the machine's substituters by default, as nix.conf has them", async () => {
    const { service, agent } = await setup({}, `machineSubstituters = true`, { nix: undefined });
    await service.until(() => service.hellos.length > 0, "hello");
    assert.deepEqual(service.hellos[0]!.agent.substituters, nix.substituters, "what `nix show-config` reports with no settings");
    assert.equal(agent.info.storeId?.startsWith(`${os.hostname()}/`), true, `store id ${agent.info.storeId}`);
    assert.deepEqual(agent.info.caches, []);
  });

  it("reports the substituters nixSettings gives, which Nix then uses", async () => {
    const { service } = await setup({}, `[nixSettings]\nsubstituters = "file:///nonexistent/cache"`, { nix: undefined });
    await service.until(() => service.hellos.length > 0, "hello");
    assert.deepEqual(service.hellos[0]!.agent.substituters, ["file:///nonexistent/cache"]);
  });

  it("lets the configuration override systems and features", async () => {
    const { service } = await setup(
      {},
      [
        `systems = ["aarch64-linux", "x86_64-linux"]`,
        `remotePlatformsWithSameFeatures = ["x86_64-darwin", "aarch64-linux"]`,
        `systemFeatures = ["gpu", "big-parallel"]`,
      ].join("\n"),
    );
    await service.until(() => service.hellos.length > 0, "hello");
    assert.deepEqual(service.hellos[0]!.agent.systems, ["aarch64-linux", "x86_64-linux", "x86_64-darwin"]);
    assert.deepEqual(service.hellos[0]!.agent.systemFeatures, ["gpu", "big-parallel"]);
  });
});

describe("session", () => {
  it("is made on first start (0600, directory created), presented in every hello and kept across restarts", async () => {
    const { service, agent, config, configDir } = await setup({ heartbeatIntervalMs: 60_000 }, `workDirectory = "state/work"\nheartbeatIntervalSeconds = 60`);
    await service.until(() => agent.connected(), "welcome");
    const file = path.join(configDir, "state", "work", "session.json");
    assert.equal(agent.sessionPath, file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const stored = JSON.parse(await readFile(file, "utf8"));
    assert.deepEqual(service.hellos[0]!.session, stored);
    assert.match(stored.id, /^[0-9a-f]{32}$/);
    assert.match(stored.secret, /^[A-Za-z0-9_-]{43}$/);

    // A new connection: the same session.
    service.connections[0]!.ws.close(1001, "Going away");
    await service.until(() => agent.connectionId() === "conn-2", "a reconnect");
    assert.deepEqual(service.hellos[1]!.session, stored);

    // A restart (as after a crash): the same session again.
    await agent.stop();
    const again = await startAgent(config, { nix, log: () => {}, backoff: { initialMs: 20, maxMs: 200 } });
    running.push({ agent: again });
    await service.until(() => service.hellos.length === 3, "the restarted agent's hello");
    assert.deepEqual(service.hellos[2]!.session, stored);
    assert.equal(again.sessionId, stored.id);
  });

  it("refuses a malformed session file, naming it and saying to delete it", async () => {
    const service = await FakeService.start();
    services.push(service);
    const configDir = await mkdtemp(path.join(dir, "agent-"));
    await writeFile(path.join(configDir, "token.key"), GOOD_TOKEN);
    await writeFile(path.join(configDir, "agent.toml"), `apiBaseUrl = "${service.apiBaseUrl}"\nclusterJoinTokenPath = "token.key"\n`);
    const file = path.join(configDir, "work", "session.json");
    await mkdir(path.dirname(file));
    const config = await loadAgentConfig(path.join(configDir, "agent.toml"));
    for (const text of ["", "not json", `{"id":"abc","secret":"x"}`, `{"id":"${"a".repeat(32)}","secret":"${"b".repeat(43)}","extra":1}`]) {
      await writeFile(file, text);
      await assert.rejects(startAgent(config, { nix, log: () => {} }), (err: Error) => {
        assert.ok(err instanceof AgentConfigError, String(err));
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, /delete it and start the agent again/);
        return true;
      });
    }
    assert.equal(service.upgradeTimes.length, 0, "never connected");
  });

  it("stops for good when the service refuses the session, naming the session file", async () => {
    const { agent } = await setup({
      onHello: (connection) =>
        connection.ws.send(JSON.stringify({ type: "error", code: "session-refused", message: "wrong secret for this session", fatal: true })),
    });
    const exit = await exitWithin(agent);
    assert.ok(exit.reason === "fatal");
    assert.equal(exit.error.code, "session-refused");
    assert.match(exit.error.message, /wrong secret for this session/);
    assert.ok(exit.error.message.includes(agent.sessionPath), exit.error.message);
  });
});

describe("heartbeats", () => {
  it("sends valid heartbeats at the configured interval when it is smaller than the service's", async () => {
    const clock = new ManualClock();
    const { service, agent } = await setup({ heartbeatIntervalMs: 30_000 }, "", { clock });
    const sent: unknown[] = [];
    const seen: unknown[] = [];
    agent.events.on("heartbeat", (heartbeat) => sent.push(heartbeat));
    agent.events.on("heartbeat-ack", (ack) => seen.push(ack));
    await service.until(() => agent.connected(), "welcome");
    for (let n = 1; n <= 3; n++) {
      assert.equal(clock.nextIn(), 50, "the configured 0.05 s, not the service's 30 s");
      clock.advance(49);
      assert.equal(sent.length, n - 1, "not before the interval");
      clock.advance(1);
      assert.equal(sent.length, n);
      await service.until(() => seen.length === n, `ack ${n} observed by the agent`);
    }
    assert.equal(service.heartbeats().length, 3);
    for (const heartbeat of service.heartbeats()) Heartbeat.parse(heartbeat);
    assert.equal(service.connections.length, 1, "acknowledged heartbeats keep the connection");
  });

  it("follows the welcome's interval when the configured one is longer", async () => {
    const service = await FakeService.start({ heartbeatIntervalMs: 40 });
    services.push(service);
    const configDir = await mkdtemp(path.join(dir, "agent-"));
    await writeFile(path.join(configDir, "token.key"), GOOD_TOKEN);
    await writeFile(
      path.join(configDir, "agent.toml"),
      `apiBaseUrl = "${service.apiBaseUrl}"\nclusterJoinTokenPath = "token.key"\nheartbeatIntervalSeconds = 300\n`,
    );
    const clock = new ManualClock();
    const agent = await startAgent(await loadAgentConfig(path.join(configDir, "agent.toml")), { nix, log: () => {}, clock });
    running.push({ agent, clock });
    const acks: unknown[] = [];
    agent.events.on("heartbeat-ack", (ack) => acks.push(ack));
    await service.until(() => agent.connected(), "welcome");
    for (let n = 1; n <= 3; n++) {
      assert.equal(clock.nextIn(), 40, "the service's 40 ms, not the configured 300 s");
      clock.advance(40);
      await service.until(() => acks.length === n, `heartbeat ${n} and its ack`);
    }
    assert.equal(service.heartbeats().length, 3);
  });

  it("drops the connection and reconnects when acks stop coming", async () => {
    const clock = new ManualClock();
    const { service, agent, lines } = await setup({ ackHeartbeats: false }, "", { clock });
    const disconnects: unknown[] = [];
    agent.events.on("disconnected", (d) => disconnects.push(d));
    await service.until(() => agent.connected(), "welcome");
    clock.advance(50); // the first heartbeat: its ack is due within two intervals
    clock.advance(50); // the second, unanswered too
    clock.advance(49);
    assert.equal(agent.connected(), true, "two intervals after the first heartbeat, not sooner");
    clock.advance(1);
    await service.until(() => disconnects.length === 1, "the silent connection to be dropped");
    clock.advance(200); // the back-off's longest delay here
    await service.until(() => service.connections.length >= 2, "a second connection");
    const first = await service.connections[0]!.closed;
    assert.equal(first.code, 1006, "the agent terminated the silent connection");
    const firstHeartbeats = service.connections[0]!.received.filter((m) => (m as { type: string }).type === "heartbeat");
    assert.equal(firstHeartbeats.length, 2, "it waited two intervals, not one");
    assert.ok(lines.some((l) => l.startsWith("warn no heartbeat-ack within 0.1 s")), lines.join("\n"));
    await service.until(() => agent.connectionId() === "conn-2", "the new connection to be welcomed");
  });
});

describe("reconnecting", () => {
  it("reconnects promptly and quietly when the gateway closes with 1001", async () => {
    const clock = new ManualClock();
    const { service, agent, lines } = await setup({ heartbeatIntervalMs: 60_000 }, "heartbeatIntervalSeconds = 60", { clock });
    const disconnects: { code: number | undefined; retryInMs: number }[] = [];
    agent.events.on("disconnected", (d) => disconnects.push({ code: d.code, retryInMs: d.retryInMs }));
    await service.until(() => agent.connected(), "welcome");
    service.connections[0]!.ws.close(1001, "Going away");
    await service.until(() => disconnects.length === 1, "the close to be noticed");
    assert.equal(disconnects[0]!.code, 1001);
    assert.ok(disconnects[0]!.retryInMs <= 20, `the back-off's first step (at most initialMs), not ${disconnects[0]!.retryInMs} ms`);
    assert.equal(clock.nextIn(), disconnects[0]!.retryInMs);
    clock.advance(disconnects[0]!.retryInMs);
    await service.until(() => agent.connectionId() === "conn-2", "a new welcomed connection");
    assert.equal(service.hellos.length, 2, "hello again on the new connection");
    assert.deepEqual(
      lines.filter((l) => l.startsWith("warn") || l.startsWith("error")),
      [],
      "a gateway's routine close is not an error",
    );
  });

  it("reconnects after the service kills the socket", async () => {
    const { service, agent, lines } = await setup({ heartbeatIntervalMs: 60_000 }, "heartbeatIntervalSeconds = 60");
    await service.until(() => agent.connected(), "welcome");
    service.connections[0]!.ws.terminate();
    await service.until(() => agent.connectionId() === "conn-2", "a new welcomed connection");
    assert.ok(lines.some((l) => l.startsWith("warn connection conn-1 lost")), lines.join("\n"));
  });

  it("backs off exponentially while the service refuses, and resets after a welcome", async () => {
    const clock = new ManualClock();
    const { service, agent } = await setup(
      { upgradeStatus: (n) => (n <= 5 ? 503 : 101), heartbeatIntervalMs: 60_000 },
      "heartbeatIntervalSeconds = 60",
      { backoff: { initialMs: 20, maxMs: 200, random: () => 0.999 }, clock },
    );
    const retries: number[] = [];
    agent.events.on("disconnected", (d) => retries.push(d.retryInMs));
    for (const [i, delay] of [20, 40, 80, 160, 200].entries()) {
      await service.until(() => retries.length === i + 1, `refusal ${i + 1}`);
      assert.equal(retries[i], delay, "doubling up to the cap");
      assert.equal(clock.nextIn(), delay, "the next attempt waits for the back-off");
      clock.advance(delay - 1);
      assert.equal(service.upgradeTimes.length, i + 1, "no attempt before the delay is over");
      clock.advance(1);
      await service.until(() => service.upgradeTimes.length === i + 2, `attempt ${i + 2}`);
    }
    await service.until(() => agent.connected(), "welcome after five refusals");
    service.connections[0]!.ws.terminate();
    await service.until(() => retries.length === 6, "the next disconnect");
    assert.equal(retries[5], 20, "a welcome resets the back-off");
  });

  it("gives up on a connection whose welcome does not come within the welcome timeout", async () => {
    const clock = new ManualClock();
    const { service, agent } = await setup({ onHello: () => {} }, "", { clock, welcomeTimeoutMs: 5_000 });
    const disconnects: { problem: string | undefined; welcomed: boolean }[] = [];
    agent.events.on("disconnected", (d) => disconnects.push({ problem: d.problem, welcomed: d.welcomed }));
    await service.until(() => service.hellos.length === 1, "hello");
    assert.equal(clock.nextIn(), 5_000);
    clock.advance(4_999);
    await service.until(() => true, "pending frames");
    assert.deepEqual(disconnects, [], "still waiting just before the timeout");
    clock.advance(1);
    await service.until(() => disconnects.length === 1, "the attempt to be given up");
    assert.deepEqual(disconnects, [{ problem: "no welcome within 5 s after hello", welcomed: false }]);
    assert.equal((await service.connections[0]!.closed).code, 1006, "the socket was dropped");
  });

  it("retries while service-info is unavailable", async () => {
    const { service, agent, lines } = await setup({ serviceInfoStatus: (n) => (n <= 2 ? 502 : 200) });
    await service.until(() => agent.connected(), "welcome once service-info answers");
    assert.equal(service.serviceInfoRequests, 3);
    assert.ok(lines.some((l) => l.includes("answered HTTP 502") && l.includes("retrying in")), lines.join("\n"));
  });

  it("keeps retrying, without a fatal error, when the service is down", async () => {
    const { service, agent } = await setup();
    await service.until(() => agent.connected(), "welcome");
    await service.close();
    services.splice(services.indexOf(service), 1);
    const disconnects: string[] = [];
    agent.events.on("disconnected", (d) => disconnects.push(d.problem ?? ""));
    await new Promise<void>((resolve) => {
      const check = () => (disconnects.length >= 3 ? resolve() : setTimeout(check, 20));
      check();
    });
    assert.ok(disconnects.some((p) => p.includes("ECONNREFUSED")), disconnects.join("\n"));
    assert.equal(agent.connected(), false);
  });
});

describe("unacknowledged messages", () => {
  it("reconnects after ackTimeoutSeconds without an ack, sends them again, and stays once they are acknowledged", async () => {
    const clock = new ManualClock();
    const { service, agent, lines } = await setup(
      { ackResults: false, heartbeatIntervalMs: 300_000 },
      "heartbeatIntervalSeconds = 300\nallowLocalRepositories = true\nackTimeoutSeconds = 90",
      { clock },
    );
    await service.until(() => agent.connected(), "welcome");
    const disconnects: unknown[] = [];
    agent.events.on("disconnected", (d) => disconnects.push(d));
    const repo = await gitRepo(dir, { "ci.nix": "{ }" });
    const taskId = "ack-timeout-1";
    service.send({ type: "evaluate", taskId, jobId: "job-ack", repository: "test/acks", cloneUrl: repo.dir, commit: repo.commit });
    await service.until(() => service.types(0).includes("evaluation-done"), "the evaluation's result", 30_000);
    // The service "lost" it (a throttled handler): no result-ack comes.
    clock.advance(89_999);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(agent.connectionId(), "conn-1", "not before the ack timeout");
    clock.advance(1);
    await service.until(() => disconnects.length === 1, "the connection to be dropped");
    assert.ok(
      lines.some((l) => l === "warn no acknowledgement from the service for 90 s with 1 message waiting for one; dropping connection conn-1"),
      lines.join("\n"),
    );
    clock.advance(200); // the back-off's longest delay here
    await service.until(() => agent.connectionId() === "conn-2", "a new connection");
    await service.until(() => service.types(1).includes("evaluation-done"), "the result sent again");
    assert.deepEqual(service.types(1), ["hello", "request-work", "evaluation-done"]);

    service.ackResult(taskId);
    await service.until(() => agent.unacknowledgedResults().length === 0, "the ack to be taken");
    clock.advance(300_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(agent.connectionId(), "conn-2", "nothing outstanding: the connection stays");
    assert.equal(service.connections.length, 2);
  });
});

describe("fatal errors", () => {
  it("stops for good when the upgrade is refused with 401", async () => {
    const clock = new ManualClock();
    const { service, agent, configDir } = await setup({}, "", { clock }, "revoked-token");
    const exit = await exitWithin(agent);
    assert.equal(exit.reason, "fatal");
    assert.ok(exit.reason === "fatal");
    assert.equal(exit.error.code, "token-refused");
    assert.match(exit.error.message, /cluster join token refused/);
    assert.match(exit.error.message, /nimbus token create/);
    assert.ok(exit.error.message.includes(path.join(configDir, "token.key")), exit.error.message);
    assert.equal(clock.pending, 0, "no retry after a refused token: no timer left");
    assert.equal(service.upgradeTimes.length, 1);
  });

  it("stops for good on 403 too", async () => {
    const { agent } = await setup({ upgradeStatus: 403 });
    const exit = await exitWithin(agent);
    assert.ok(exit.reason === "fatal");
    assert.equal(exit.error.code, "token-refused");
  });

  it("stops for good on a fatal error message, and only logs a non-fatal one", async () => {
    const errors: AgentErrorEvent[] = [];
    const clock = new ManualClock();
    const { service, agent, lines } = await setup({
      onHello: (connection) => {
        connection.welcome();
        connection.ws.send(JSON.stringify({ type: "error", code: "invalid-message", message: "bad field", fatal: false }));
        setTimeout(
          () =>
            connection.ws.send(
              JSON.stringify({ type: "error", code: "protocol-version", message: "protocol 1 is not supported", fatal: true }),
            ),
          100,
        );
      },
    }, "", { clock });
    agent.events.on("error", (e) => errors.push(e));
    const exit = await exitWithin(agent);
    assert.ok(exit.reason === "fatal");
    assert.equal(exit.error.code, "protocol-version");
    assert.match(exit.error.message, /protocol 1 is not supported/);
    assert.deepEqual(
      errors.map((e) => [e.code, e.fatal]),
      [
        ["invalid-message", false],
        ["protocol-version", true],
      ],
    );
    assert.ok(lines.some((l) => l === "warn the service reported invalid-message: bad field"), lines.join("\n"));
    assert.equal((await service.connections[0]!.closed).code, 1000);
    assert.equal(clock.pending, 0, "no reconnect after a fatal error: no timer left");
    assert.equal(service.connections.length, 1);
  });

  it("refuses a service whose service-info announces another protocol version", async () => {
    const { service, agent } = await setup({ serviceInfo: { protocolVersion: PROTOCOL_VERSION + 1, serviceVersion: "9.9.9" } });
    const exit = await exitWithin(agent);
    assert.ok(exit.reason === "fatal");
    assert.equal(exit.error.code, "protocol-version");
    assert.match(exit.error.message, new RegExp(`speaks agent protocol ${PROTOCOL_VERSION + 1} \\(Nimbus 9\\.9\\.9\\)`));
    assert.equal(service.upgradeTimes.length, 0, "never opened the socket");
  });
});

describe("incoming messages", () => {
  it("ignores and logs unknown, invalid and non-JSON frames and stays connected", async () => {
    const { service, agent, lines } = await setup({
      heartbeatIntervalMs: 60_000,
      onHello: (connection) => {
        connection.welcome();
        connection.ws.send(JSON.stringify({ type: "build-task", drvPath: "/nix/store/x.drv" }));
        connection.ws.send(JSON.stringify({ type: "heartbeat-ack", sentAt: "yesterday" }));
        connection.ws.send("{not json");
      },
    }, "heartbeatIntervalSeconds = 60");
    await service.until(() => lines.filter((l) => l.startsWith("warn ignored")).length === 3, "three ignored frames");
    assert.ok(lines.includes('warn ignored a message of unknown type "build-task"'), lines.join("\n"));
    assert.ok(lines.some((l) => l.startsWith('warn ignored an invalid "heartbeat-ack" message')), lines.join("\n"));
    assert.ok(lines.some((l) => l.startsWith("warn ignored a frame that is not JSON")), lines.join("\n"));
    assert.equal(agent.connected(), true);
    assert.equal(service.connections.length, 1);
  });
});

describe("stopping", () => {
  it("sends pause, then goodbye, closes the socket with 1000 and does not reconnect", async () => {
    const clock = new ManualClock();
    const { service, agent, lines } = await setup({ heartbeatIntervalMs: 60_000 }, "heartbeatIntervalSeconds = 60", { clock });
    await service.until(() => agent.connected(), "welcome");
    await agent.stop();
    assert.deepEqual(await agent.exited, { reason: "stopped" });
    assert.deepEqual(service.types(0), ["hello", "request-work", "pause", "goodbye"]);
    assert.equal((await service.connections[0]!.closed).code, 1000);
    assert.equal(agent.connected(), false);
    assert.equal(agent.connectionId(), undefined);
    assert.ok(lines.some((l) => l.startsWith("info shutting down (finish): sent pause")), lines.join("\n"));
    assert.ok(lines.includes("info goodbye sent; closing the connection"), lines.join("\n"));
    assert.equal(clock.pending, 0, "no timer left: nothing can reconnect");
    assert.equal(service.connections.length, 1);
    await agent.stop(); // again: nothing more, no hang
  });

  it("reconnects at once to say goodbye when the connection was just lost", async () => {
    const clock = new ManualClock();
    const { service, agent } = await setup({ heartbeatIntervalMs: 60_000 }, "heartbeatIntervalSeconds = 60\nshutdownTimeoutSeconds = 5", {
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      clock,
    });
    const disconnects: number[] = [];
    agent.events.on("disconnected", (d) => disconnects.push(d.retryInMs));
    await service.until(() => agent.connected(), "welcome");
    service.connections[0]!.ws.terminate();
    await service.until(() => disconnects.length === 1, "the loss to be noticed");
    assert.ok(disconnects[0]! >= 30_000, "a back-off of 30–60 s before the next attempt");
    const at = clock.now();
    // The clock never moves: the stop does not wait out the back-off.
    await withinRealSeconds(agent.stop(), "the stop");
    assert.equal(clock.now(), at);
    assert.equal(service.connections.length, 2, "did not wait out the back-off");
    assert.deepEqual(service.types(1), ["hello", "goodbye"], "a leaving agent asks for nothing on its last connection");
    assert.equal((await service.connections[1]!.closed).code, 1000);
  });

  it("gives up saying goodbye within the shutdown timeout when it cannot connect", async () => {
    const clock = new ManualClock();
    const { service, agent, lines } = await setup({ upgradeStatus: 503 }, "", { backoff: { initialMs: 60_000, maxMs: 60_000 }, clock });
    const disconnects: unknown[] = [];
    agent.events.on("disconnected", (d) => disconnects.push(d));
    await service.until(() => disconnects.length === 1, "the first attempt to be refused");
    const stopping = agent.stop();
    await service.until(() => disconnects.length === 2, "one more attempt at once, not after the 60 s back-off");
    assert.equal(service.upgradeTimes.length, 2);
    clock.advance(499);
    assert.equal(await settled(stopping), false, "still trying within shutdownTimeoutSeconds = 0.5");
    clock.advance(1);
    await withinRealSeconds(stopping, "the stop once the 0.5 s are over");
    assert.deepEqual(await agent.exited, { reason: "stopped" });
    assert.ok(lines.some((l) => l.startsWith("warn left without a goodbye")), lines.join("\n"));
  });
});
