/**
 * A build's start reads nothing before its lease (issue #11, docs/scale.md "The per-build
 * request budget"), against the real local stack with protocol-level agents: the build-queue
 * message carries what placement and the `build` need, kept on the dependent's item as its
 * inputs settle; the lease checks what the read did. A message of the old shape (queued before
 * a deploy) is still started, from reads; a message of an earlier attempt starts nothing; and
 * the entries on the item stay bounded.
 */
import assert from "node:assert/strict";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { after, afterEach, before, describe, it } from "node:test";
import { BUILT_INPUT_BYTES, inputsAtHand, queueKeyOf, type BuiltInput } from "@nimbus/core";
import type { CacheInfo } from "@nimbus/protocol";
import { handleAgentFrame } from "../packages/service/src/edges/agent-messages.ts";
import { freshDerivation } from "../packages/service/src/flow/register-derivation.ts";
import { buildTaskId } from "../packages/service/src/flow/tasks/build-task.ts";
import { sqs } from "../packages/service/src/platform/aws-clients.ts";
import { hexDigest } from "../packages/service/src/platform/hex-digest.ts";
import { buildQueueUrl } from "../packages/service/src/storage/build-queues.ts";
import { bornQueued, createDerivation, getDerivation } from "../packages/service/src/storage/derivations.ts";
import { INPUTS_ON_ITEM, inputsOnItemFields } from "../packages/service/src/storage/inputs-on-item.ts";
import type { DerivationItem } from "../packages/service/src/storage/items.ts";
import { clearPendingInputs } from "../packages/service/src/storage/pending-inputs.ts";
import { countDynamoRequests, recording, type Request } from "./support/count-requests.ts";
import { hello, RawAgent } from "./support/raw-agent.ts";
import { attribute, buildOf, derivation, drv, evaluatedJob } from "./support/graph-events.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const shared: CacheInfo = { name: "shared", kind: "NixCache", publicKeys: ["shared-1:k"], push: true, pull: true };

/** A read of the Derivations table (or of an input's rows) naming one of `drvPaths`. */
const readsOf = (requests: Request[], drvPaths: string[]) =>
  requests.filter(
    (r) =>
      ["GetItemCommand", "BatchGetItemCommand", "QueryCommand"].includes(r.command) &&
      /-(Derivations|DerivationInputs)$/.test(String(r.input.TableName ?? Object.keys(r.input.RequestItems ?? {})[0] ?? "")) &&
      drvPaths.some((path) => JSON.stringify(r.input).includes(path)),
  );

describe("a build's start without reads", () => {
  let stack: TestStack;
  let token: string;
  const open: RawAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("claimless")).token;
  });
  after(async () => {
    for (const agent of open) agent.close();
    await stack?.cleanup();
  });
  afterEach(() => {
    for (const agent of open.splice(0)) agent.close();
  });

  async function agentOn(hostname: string, system: string, concurrentTasks: number, caches: CacheInfo[] = []) {
    const agent = await RawAgent.connect(stack.agentSocketUrl, token);
    open.push(agent);
    const welcome = await agent.request(hello({ hostname, systems: [system], systemFeatures: [], concurrentTasks, caches }));
    assert.equal(welcome.type, "welcome");
    return { agent, connectionId: (welcome as { connectionId: string }).connectionId };
  }

  /** A build-result: succeeded, its outputs pushed to the shared cache. */
  const pushed = (build: { taskId: string; drvPath: string }) =>
    JSON.stringify({
      type: "build-result",
      taskId: build.taskId,
      drvPath: build.drvPath,
      status: "succeeded",
      outputs: { out: `${build.drvPath}-out` },
      caches: [{ cache: "shared", status: "pushed", paths: 1, alreadyPresent: 0 }],
    });

  it("starts a dependent from its queue message: placed, leased and sent with its inputs' outputs and caches, reading neither it nor its inputs", async () => {
    const inputsOn = "sparc64-linux";
    const dependentOn = "s390x-linux";
    const { agent: builder, connectionId } = await agentOn("cl-builder", inputsOn, 2, [shared]);
    const jobId = await evaluatedJob(stack, builder, "acme/claimless", [
      derivation("cl-x", [], { system: inputsOn }),
      derivation("cl-y", [], { system: inputsOn }),
      derivation("cl-d", ["cl-x", "cl-y"], { system: dependentOn }),
      attribute("cl-d"),
    ]);
    const [x, y] = [await buildOf(builder, "cl-x"), await buildOf(builder, "cl-y")];
    // The dependent's agent reads the cache the inputs were pushed to: placement needs it.
    const { agent: taker } = await agentOn("cl-taker", dependentOn, 1, [shared]);
    await handleAgentFrame(connectionId, pushed(x));
    assert.deepEqual((await getDerivation(drv("cl-d")))?.inputsBuilt?.map((e) => e.drvPath), [drv("cl-x")], "the first input's outputs went on the dependent with its clear");

    // The last input's result: its settle clears it off the dependent, queues it with its start, and the wake gives it to the idle taker.
    const requests = await recording(() => handleAgentFrame(connectionId, pushed(y)));
    const d = await buildOf(taker, "cl-d");
    assert.deepEqual(readsOf(requests, [drv("cl-d"), drv("cl-x"), drv("cl-y")]), [], "no read of the dependent or its inputs");
    const send = requests.find((r) => r.command === "SendMessageCommand" && String(r.input.MessageBody).includes(drv("cl-d")));
    assert.ok(send, "it went through its queue (not handed over: the builder cannot build it)");
    assert.ok(JSON.parse(String(send.input.MessageBody)).start, "its message carried its start");
    const receive = requests.find((r) => r.command === "ReceiveMessageCommand");
    assert.ok(receive, "the wake received it in this invocation");

    assert.equal(d.taskId, buildTaskId(drv("cl-d"), 0));
    assert.deepEqual(d.inputs, [`${drv("cl-x")}-out`, `${drv("cl-y")}-out`], "its inputs' outputs, from the message");
    assert.deepEqual(d.inputCaches, ["shared"], "and the cache holding them");
    const item = await getDerivation(drv("cl-d"));
    assert.equal(item?.status, "building");
    assert.equal(item?.lease?.taskId, d.taskId);
    assert.equal(item?.inputsBuilt, undefined, "once in its message, they left the item with its move to queued");
    assert.deepEqual((await stack.getItem("JobDerivations", { jobId, drvPath: drv("cl-d") }))?.status, "queued", "a build's start is no move of its job's row");
  });

  it("starts a message of the old shape from reads, and starts nothing from a message of an earlier attempt", async () => {
    const system = "m68k-linux";
    const queueKey = queueKeyOf(system, []);
    const at = new Date().toISOString();
    const input: DerivationItem = { ...freshDerivation("job-old", derivation("cl-old-in", [], { system }) as never, [], at), status: "succeeded" };
    assert.ok(await createDerivation(input));
    // Queued before messages carried starts: its inputs on the item, none of their outputs.
    const waiting = { ...freshDerivation("job-old", derivation("cl-old", ["cl-old-in"], { system }) as never, [], at), ...inputsOnItemFields([input.drvPath], []) };
    const queued = { ...bornQueued(waiting, new Date()), attempt: 1 };
    assert.ok(await createDerivation(queued));
    const url = await buildQueueUrl(queueKey);
    const send = (body: unknown, dedup: string) =>
      sqs().send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(body), MessageGroupId: hexDigest(queued.drvPath, 32), MessageDeduplicationId: dedup }));
    // A message of attempt 0, with a start (a retry since made attempt 1), then the old shape for attempt 1.
    await send({ drvPath: queued.drvPath, attempt: 0, start: { system, requiredFeatures: [], needs: [], inputs: ["/nix/store/stale-out"] } }, "stale");
    await send({ drvPath: queued.drvPath, attempt: 1 }, "old-shape");

    // The agent's hello dispatches to it (handled by the local gateway: every request of the stack is counted).
    const isDerivationWrite = (command: string, input: Record<string, unknown>) =>
      command === "UpdateItemCommand" && String(input.TableName).endsWith("-Derivations") && JSON.stringify(input.Key).includes(queued.drvPath);
    let agent!: RawAgent;
    let leases = 0;
    const reads = await countDynamoRequests(
      (command, input) => command === "GetItemCommand" && String(input.TableName).endsWith("-Derivations") && JSON.stringify(input.Key).includes(queued.drvPath),
      async () => {
        leases = await countDynamoRequests(isDerivationWrite, async () => {
          agent = (await agentOn("cl-old-taker", system, 2)).agent;
          await buildOf(agent, "cl-old");
        });
      },
    );
    const build = await buildOf(agent, "cl-old");
    assert.equal(build.taskId, buildTaskId(queued.drvPath, 1), "the current attempt");
    assert.deepEqual(build.inputs, [`${input.outputs.out}`], "its input's outputs, read");
    assert.ok(reads > 0, "the old shape was claimed by reading the derivation");
    assert.equal(leases, 2, "the earlier attempt's lease was tried, and refused; the current one taken");
    // Its group's messages come in order: the earlier attempt's was handled before this build was sent.
    assert.equal(agent.messages.filter((m) => m.type === "build").length, 1, "nothing started from the earlier attempt's message");
    assert.equal((await getDerivation(queued.drvPath))?.lease?.taskId, build.taskId);
  });

  it("keeps each built input on the dependent's item once, only for inputs it lists, each entry bounded", async () => {
    const at = new Date().toISOString();
    const names = Array.from({ length: INPUTS_ON_ITEM }, (_, i) => `cl-bound-${i}`);
    const inputs = names.map(drv);
    const item = { ...freshDerivation("job-bound", derivation("cl-bound", names) as never, [], at), ...inputsOnItemFields(inputs, inputs) };
    assert.ok(await createDerivation(item));
    // As large as an entry may be: outputs filling BUILT_INPUT_BYTES.
    const entryOf = (drvPath: string, bytes = BUILT_INPUT_BYTES): BuiltInput => {
      const base = { drvPath, outputs: [] as string[], sources: ["cache:shared"] };
      const room = bytes - Buffer.byteLength(JSON.stringify({ ...base, outputs: ["/"] }));
      return { ...base, outputs: [`/${"o".repeat(room)}`] };
    };

    let after = await clearPendingInputs(item.drvPath, [inputs[0]!], [entryOf(inputs[0]!)]);
    assert.equal(after?.inputsBuilt?.length, 1);
    after = (await clearPendingInputs(item.drvPath, [inputs[0]!], [entryOf(inputs[0]!)])) ?? (await getDerivation(item.drvPath));
    assert.equal(after?.inputsBuilt?.length, 1, "a repeated clear adds no second entry");
    await clearPendingInputs(item.drvPath, [drv("cl-not-an-input")], [entryOf(drv("cl-not-an-input"))]);
    assert.equal((await getDerivation(item.drvPath))?.inputsBuilt?.length, 1, "an input the item does not list (an edge another evaluation wrote) adds none");
    after = await clearPendingInputs(item.drvPath, [inputs[1]!], [entryOf(inputs[1]!, BUILT_INPUT_BYTES + 1)]);
    assert.equal(after?.pendingInputs?.has(inputs[1]!), false, "an entry past the bound: the input is cleared");
    assert.equal(after?.inputsBuilt?.length, 1, "but not kept");
    for (const input of inputs.slice(2)) after = await clearPendingInputs(item.drvPath, [input], [entryOf(input)]);
    assert.equal(after?.pendingInputs, undefined, "every input cleared");
    assert.equal(after?.inputsBuilt?.length, INPUTS_ON_ITEM - 1);
    assert.equal(inputsAtHand(after!), undefined, "one left out: its start reads its inputs");
    const bytes = Buffer.byteLength(JSON.stringify({ ...after, inputs: [...(after?.inputs ?? [])] }));
    assert.ok(bytes < 100_000, `the item with every entry at its bound: ${bytes} bytes, far from DynamoDB's 400 KB`);
  });
});
