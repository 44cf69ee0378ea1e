/**
 * Folded acknowledgements (docs/protocol.md, `build`'s `acks`), against the real local stack: a
 * `build-result` whose invocation sends its agent a build — a hand-over, or the freed slot's
 * dispatch from a queue — acknowledges the result on that build and posts no `result-ack`, one
 * gateway post per result where there were two. A refused result still gets its error; a
 * combined post that finds the connection gone leaves the agent to send its result again after
 * reconnecting, as a lost `result-ack` does; and the real agent takes a carried ack as an ack.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, afterEach, before, describe, it } from "node:test";
import { ServiceMessage, type BuildTask } from "@nimbus/protocol";
import { handleAgentFrame } from "../packages/service/src/edges/agent-messages.ts";
import { gatewayManagement } from "../packages/service/src/platform/aws-clients.ts";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { recording, type Request } from "./support/count-requests.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { attribute, buildOf, derivation, drv, evaluatedJob, finished, succeeded } from "./support/graph-events.ts";
import { hello, newSession, RawAgent } from "./support/raw-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { ASK_AGAIN_MS } from "./support/ask-again.ts";

/** What the gateway was asked to post: the connection and the message. */
const posted = (requests: Request[]) =>
  requests
    .filter((r) => r.command === "PostToConnectionCommand")
    .map((r) => ({ connectionId: r.input.ConnectionId as string, message: ServiceMessage.parse(JSON.parse(Buffer.from(r.input.Data as Uint8Array).toString())) }));

describe("a result acknowledged by the build its invocation sends the agent", () => {
  let stack: TestStack;
  let token: string;
  const open: RawAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("folded-acks")).token;
  });
  after(async () => {
    for (const agent of open) agent.close();
    await stack?.cleanup();
  });
  afterEach(() => {
    for (const agent of open.splice(0)) agent.close();
  });

  /** A connected one-slot agent on `system`, its connection id, and the session it said hello with. */
  async function agentOn(hostname: string, system: string) {
    const agent = await RawAgent.connect(stack.agentSocketUrl, token);
    open.push(agent);
    const session = newSession();
    const welcome = await agent.request(hello({ hostname, systems: [system], systemFeatures: [], concurrentTasks: 1 }, session));
    assert.equal(welcome.type, "welcome");
    return { agent, session, connectionId: (welcome as { connectionId: string }).connectionId };
  }

  it("a chain's links, each handed over: one gateway post per result, the next link carrying the last one's ack", async () => {
    const system = "riscv64-linux";
    const on = (name: string, inputs: string[] = []) => derivation(name, inputs, { system });
    const { agent, connectionId } = await agentOn("fold-chain", system);
    const jobId = await evaluatedJob(stack, agent, "acme/fold-chain", [on("fa-a"), on("fa-b", ["fa-a"]), on("fa-c", ["fa-b"]), on("fa-d", ["fa-c"]), attribute("fa-d")]);
    let build = await buildOf(agent, "fa-a");
    const posts: ReturnType<typeof posted>[] = [];
    for (const next of ["fa-b", "fa-c", "fa-d"]) {
      posts.push(posted(await recording(() => handleAgentFrame(connectionId, succeeded(build)))));
      const carrier = await buildOf(agent, next);
      assert.deepEqual(carrier.acks, [build.taskId], `${next}'s build acknowledges the result of the link before`);
      build = carrier;
    }
    posts.push(posted(await recording(() => handleAgentFrame(connectionId, succeeded(build)))));
    // Four results, four posts (three builds carrying an ack, then the last result's own result-ack); seven without folding.
    assert.deepEqual(
      posts.map((p) => p.map(({ message }) => message.type)),
      [["build"], ["build"], ["build"], ["result-ack"]],
    );
    assert.ok(posts.flat().every((p) => p.connectionId === connectionId));
    assert.deepEqual(posts[3]![0]!.message, { type: "result-ack", taskId: build.taskId, askAgainMs: ASK_AGAIN_MS });
    assert.deepEqual(
      agent.messages.filter((m) => m.type === "result-ack").map((m) => (m as { taskId: string }).taskId).filter((id) => id.startsWith("b-")),
      [build.taskId],
      "no result-ack for a result a build acknowledged",
    );
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });

  it("the freed slot's build from the queue carries the ack; a result sent again is refused with its error, as before", async () => {
    const system = "loongarch64-linux";
    const on = (name: string) => derivation(name, [], { system });
    const { agent, connectionId } = await agentOn("fold-queue", system);
    const jobId = await evaluatedJob(stack, agent, "acme/fold-queue", [on("fq-x"), on("fq-y"), attribute("fq-x"), attribute("fq-y")]);
    // One slot: one of the two is sent, the other waits in its build queue.
    const first = await eventually(async () => agent.messages.find((m): m is BuildTask => m.type === "build"), "the first build");
    const requests = await recording(() => handleAgentFrame(connectionId, succeeded(first)));
    const second = await eventually(async () => agent.messages.find((m): m is BuildTask => m.type === "build" && m.taskId !== first.taskId), "the second build");
    assert.deepEqual(second.acks, [first.taskId], "the queued build, dispatched to the freed slot, acknowledges the result");
    assert.ok(requests.some((r) => r.client === "sqs" && r.command === "ReceiveMessageCommand"), "it came from its build queue (no hand-over: nothing depends on the first)");
    assert.deepEqual(posted(requests).map(({ message }) => message.type), ["build"], "one post: no result-ack");

    const again = await agent.request(succeeded(first));
    assert.equal(again.type, "error");
    assert.equal((again as { code: string }).code, "unknown-task", "a repeat is refused with its error, which no build carries");
    assert.equal((await agent.request(succeeded(second))).type, "result-ack", "nothing to send it: the ack goes alone");
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });

  it("a combined post that finds the connection gone: the agent sends its result again on its new connection, is refused, and gets the build", async () => {
    const system = "powerpc64le-linux";
    const on = (name: string, inputs: string[] = []) => derivation(name, inputs, { system });
    const { agent, session, connectionId } = await agentOn("fold-gone", system);
    const jobId = await evaluatedJob(stack, agent, "acme/fold-gone", [on("fg-a"), on("fg-b", ["fg-a"]), attribute("fg-b")]);
    const a = await buildOf(agent, "fg-a");
    // The gateway loses the socket without a $disconnect; the session still names the connection.
    stack.gateway.dropConnection(connectionId);
    const requests = await recording(() => handleAgentFrame(connectionId, succeeded(a)));
    const tried = posted(requests);
    assert.equal(tried.length, 1, "one post was tried: b's build carrying a's ack");
    assert.equal(tried[0]!.message.type === "build" && tried[0]!.message.drvPath, drv("fg-b"));
    assert.deepEqual(tried[0]!.message.type === "build" && tried[0]!.message.acks, [a.taskId]);

    // The agent comes back with its session, a's result still unacknowledged: it lists a, and sends the result again
    // after the welcome, as the real agent does. The service no longer holds a for it (a cancel says so), and refuses the
    // copy: the result was applied. b, which the lost post carried, is sent again.
    const back = await RawAgent.connect(stack.agentSocketUrl, token);
    open.push(back);
    const welcome = await back.request(hello({ hostname: "fold-gone", systems: [system], systemFeatures: [], concurrentTasks: 1 }, session, [a.taskId]));
    assert.equal(welcome.type, "welcome");
    back.send(succeeded(a));
    const about = (type: string) => eventually(async () => back.messages.find((m) => m.type === type && (m as { taskId?: string }).taskId === a.taskId), `a ${type} for a`);
    await about("cancel");
    const refused = await about("error");
    assert.equal(refused.type === "error" && refused.code, "unknown-task");
    assert.ok(!back.messages.some((m) => m.type === "result-ack"), "no ack for the copy");
    const b = await buildOf(back, "fg-b");
    assert.equal((await back.request(succeeded(b))).type, "result-ack");
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });
});

describe("the real agent, a real Nix chain", () => {
  let stack: TestStack;
  let agent: AgentProcess | undefined;
  after(async () => {
    gatewayManagement().middlewareStack.remove("foldedAcksPosts");
    agent?.child.kill("SIGKILL");
    await stack?.cleanup();
  });

  it("takes each carried ack as an ack: after a reconnect it sends no acknowledged result again", async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("folded-acks-agent");
    // Every post the gateway is asked for, from every invocation of the stack (it runs in this process).
    const posts: { connectionId: string; message: ServiceMessage }[] = [];
    gatewayManagement().middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "PostToConnectionCommand") posts.push(...posted([{ client: "gateway", command: context.commandName, input: args.input as Record<string, any> }]));
        return next(args);
      },
      { step: "initialize", name: "foldedAcksPosts" },
    );
    const nonce = randomBytes(6).toString("hex");
    const link = (name: string, input?: string) =>
      `${name} = derivation { name = "fold-${name}-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${name} ${input ? `$(cat \${${input}})` : ""} > $out" ]; };`;
    const repo = await makeGitRepo("fold-chain", { "ci.nix": `rec {\n  ${link("a")}\n  ${link("b", "a")}\n  ${link("c", "b")}\n}\n` });
    const env = { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir };
    const trigger = async (path: string) => {
      const result = await runCli(["trigger", path], env);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim();
    };
    agent = await startAgentProcess(stack.url, token, `concurrentTasks = 1\n[labels]\nname = "folding"`);
    const job = await finished(stack, await trigger(repo.path), 90_000);
    assert.equal(job.status, "succeeded", agent.output());

    const builds = posts.flatMap(({ message }) => (message.type === "build" ? [message] : []));
    const [a, b, c] = ["a", "b", "c"].map((name) => builds.find((m) => m.drvPath.includes(`-fold-${name}-${nonce}`)));
    assert.ok(a && b && c, `three builds posted: ${JSON.stringify(builds)}`);
    assert.deepEqual(b.acks, [a.taskId], "b's build acknowledges a's result");
    assert.deepEqual(c.acks, [b.taskId], "c's build acknowledges b's result");
    const buildAcks = posts.filter(({ message }) => message.type === "result-ack" && message.taskId.startsWith("b-"));
    assert.deepEqual(buildAcks.map(({ message }) => message), [{ type: "result-ack", taskId: c.taskId, askAgainMs: ASK_AGAIN_MS }], "a result-ack only for the last link");

    // The gateway loses the socket; the agent comes back. A result it still held would go again now and be refused.
    const [first] = stack.gateway.connectionIds();
    stack.gateway.dropConnection(first!);
    await eventually(async () => (stack.gateway.connectionIds().some((id) => id !== first) ? true : undefined), "the agent to reconnect");
    // One more build on the new connection: its result is answered after anything the agent sent on welcome.
    const more = await makeGitRepo("fold-more", { "ci.nix": `{\n  ${link("d")}\n}\n` });
    assert.equal((await finished(stack, await trigger(more.path), 90_000)).status, "succeeded", agent.output());
    const refused = posts.filter(({ message }) => message.type === "error");
    assert.deepEqual(refused, [], "no result was sent again: nothing refused");
    assert.doesNotMatch(agent.output(), /unknown-task|not this agent's/);
  });
});
