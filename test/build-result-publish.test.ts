/**
 * A build's result carries its outputs' publication to the built-in cache (docs/cache.md,
 * "Publication with the result"): the service checks and publishes them in the invocation that
 * settles the build, before any dependent is dispatched — no `cache-upload-complete` and no
 * `cache-upload-result` for them. Its claims are checked as a completion's are, and a result
 * publishes nothing but its outputs' closure.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentList, DerivationLog, type ServiceMessage } from "@nimbus/protocol";
import { handleAgentFrame } from "../packages/service/src/edges/agent-messages.ts";
import { agentSuite } from "./support/agent-suite.ts";
import { payload, sha, storePath, uploaded } from "./support/cache-uploads.ts";
import { recording } from "./support/count-requests.ts";
import { attribute, buildOf, derivation, derivationItem, drv, evaluatedJob } from "./support/graph-events.ts";

describe("a build's result publishes its outputs", () => {
  const suite = agentSuite("publish-with-result");
  let readToken = "";
  const narinfoStatus = async (path: string) => {
    readToken ||= (await suite.stack.api("POST", "/api/cache/tokens", { access: "read" })).body.token;
    return (await fetch(`${suite.stack.url}/cache/${path.slice(11, 43)}.narinfo`, { headers: { authorization: `Bearer ${readToken}` } })).status;
  };
  const posted = (requests: Array<{ client: string; input: Record<string, any> }>) =>
    requests.filter((r) => r.client === "gateway").map((r) => JSON.parse(Buffer.from(r.input.Data).toString()) as ServiceMessage);
  const sourcesOf = async (name: string): Promise<string[]> => [...(((await suite.stack.getItem("Derivations", { drvPath: drv(name) }))?.sources as Set<string>) ?? [])];
  const pushedToNimbus = [{ cache: "nimbus", status: "pushed", paths: 1, alreadyPresent: 0 }];

  it("publishes them, then settles: the dependent goes out after the put, in one invocation with no completion", async () => {
    const system = "sh4-linux";
    const { agent, connectionId } = await suite.agentOn("publisher", system);
    await evaluatedJob(suite.stack, agent, "acme/publish-with-result", [
      derivation("pub-a", [], { system }),
      derivation("pub-b", ["pub-a"], { system }),
      attribute("pub-b"),
    ]);
    const a = await buildOf(agent, "pub-a");
    const out = payload(storePath("pub-a-out"));
    await uploaded(agent, out);
    assert.equal(await narinfoStatus(out.claim.storePath), 404, "uploaded, not published");

    const result = { type: "build-result", taskId: a.taskId, drvPath: a.drvPath, status: "succeeded", outputs: { out: out.claim.storePath }, caches: pushedToNimbus, publish: [out.claim] };
    const requests = await recording(() => handleAgentFrame(connectionId, JSON.stringify(result)));
    assert.equal(await narinfoStatus(out.claim.storePath), 200, "published by the result");
    const answers = posted(requests);
    assert.deepEqual(answers.filter((m) => m.type.startsWith("cache-")), [], "no cache-upload-result: nothing was asked apart");
    const put = requests.findIndex((r) => r.command === "PutItemCommand" && /-CachePaths$/.test(r.input.TableName));
    // The dependent is queued (or handed to this agent) only once the output is in the cache; the build settles after it too.
    const settled = requests.findIndex((r) => r.command === "UpdateItemCommand" && /-Derivations$/.test(r.input.TableName) && r.input.Key?.drvPath === a.drvPath);
    const dependent = requests.findIndex(
      (r) => (r.command === "SendMessageCommand" && String(r.input.MessageBody).includes(drv("pub-b"))) || (r.client === "gateway" && Buffer.from(r.input.Data).toString().includes(drv("pub-b"))),
    );
    assert.ok(put >= 0 && settled > put && dependent > put, `the output is in the cache before its build settles and its dependent goes out (put #${put}, settle #${settled}, dependent #${dependent})`);
    assert.equal(requests.filter((r) => r.command === "PutItemCommand" && /-CachePaths$/.test(r.input.TableName)).length, 1, "one put: the output");
    assert.equal(requests.filter((r) => /-CacheStats$/.test(r.input.TableName ?? "")).length, 1, "one addition to the totals");
    assert.ok((await sourcesOf("pub-a")).includes("cache:nimbus"), "its outputs are recorded in the built-in cache");

    assert.equal((await derivationItem(suite.stack, "pub-b"))?.status, "queued", "its dependent is queued, for an agent that reads the cache");
  });

  it("checks its claims as a completion's: a path not its outputs', a wrong NarHash, a reference not in the cache — refused, published by nobody, said to the user", async () => {
    const system = "sh3-linux";
    // Two slots: both builds are given at once, neither waits on the other's result.
    const { agent, connectionId } = await suite.agentOn("claimant", system, 2);
    await evaluatedJob(suite.stack, agent, "acme/publish-refused", [derivation("pub-c", [], { system }), derivation("pub-d", [], { system }), attribute("pub-c"), attribute("pub-d")], "8".repeat(40));

    // An output honestly uploaded beside a path that is no output of the build, honestly uploaded too.
    const c = await buildOf(agent, "pub-c");
    const own = payload(storePath("pub-c-out"));
    const foreign = payload(storePath("not-an-output"));
    await uploaded(agent, own, foreign);
    await handleAgentFrame(
      connectionId,
      JSON.stringify({ type: "build-result", taskId: c.taskId, drvPath: c.drvPath, status: "succeeded", outputs: { out: own.claim.storePath }, caches: pushedToNimbus, publish: [own.claim, foreign.claim] }),
    );
    assert.equal(await narinfoStatus(foreign.claim.storePath), 404, "a result publishes no path outside its outputs' closure");
    assert.equal(await narinfoStatus(own.claim.storePath), 200, "its own output is checked and published on its own, as in a completion");
    const cItem = await derivationItem(suite.stack, "pub-c");
    assert.equal(cItem?.status, "succeeded", "a refused publication does not fail the build");
    assert.ok(!(await sourcesOf("pub-c")).includes("cache:nimbus"), "the cache is not named where its outputs are");
    assert.match(cItem?.cacheProblems?.join("\n") ?? "", /push to nimbus failed: cache "nimbus" refused the push: .*not-an-output was refused: is not an output of this build/);

    // Its own output, with a NarHash that is not the file's, and a reference to a path the cache lacks.
    const d = await buildOf(agent, "pub-d");
    const lying = payload(storePath("pub-d-out"));
    const orphan = payload(storePath("pub-d-dev"), [storePath("never-pushed")]);
    await uploaded(agent, lying, orphan);
    lying.claim.narHash = sha(Buffer.from("something else"));
    await handleAgentFrame(
      connectionId,
      JSON.stringify({
        type: "build-result",
        taskId: d.taskId,
        drvPath: d.drvPath,
        status: "succeeded",
        outputs: { out: lying.claim.storePath, dev: orphan.claim.storePath },
        caches: pushedToNimbus,
        publish: [lying.claim, orphan.claim],
      }),
    );
    for (const p of [lying, orphan]) assert.equal(await narinfoStatus(p.claim.storePath), 404, `${p.claim.storePath} is not published`);
    const dItem = await derivationItem(suite.stack, "pub-d");
    assert.ok(!(await sourcesOf("pub-d")).includes("cache:nimbus"));
    assert.match(dItem?.cacheProblems?.join("\n") ?? "", /pub-d-out was refused: the NAR in the uploaded file does not have the NarHash claimed/);
    const log = DerivationLog.parse((await suite.stack.api("GET", `/api/derivations/${encodeURIComponent(d.drvPath)}/log`)).body).lines;
    assert.match(log.at(-1) ?? "", /^nimbus: push to nimbus failed: .*was refused/, "the build's log ends with the refusal, as the agent's own would say it");
    const [listed] = AgentList.parse((await suite.stack.api("GET", "/api/agents")).body).agents.filter((x) => x.hostname === "claimant");
    assert.match(listed?.cacheProblems?.find((p) => p.cache === "nimbus")?.problem ?? "", /was refused/, "the agents list shows the cache's problem");
  });

  it("a failed result publishes nothing it carries", async () => {
    const system = "sh2-linux";
    const { agent, connectionId } = await suite.agentOn("failer", system);
    await evaluatedJob(suite.stack, agent, "acme/publish-failed", [derivation("pub-e", [], { system }), attribute("pub-e")], "9".repeat(40));
    const e = await buildOf(agent, "pub-e");
    const out = payload(storePath("pub-e-out"));
    await uploaded(agent, out);
    await handleAgentFrame(connectionId, JSON.stringify({ type: "build-result", taskId: e.taskId, drvPath: e.drvPath, status: "failed", exitCode: 1, publish: [out.claim] }));
    assert.equal((await derivationItem(suite.stack, "pub-e"))?.status, "failed");
    assert.equal(await narinfoStatus(out.claim.storePath), 404);
  });
});
