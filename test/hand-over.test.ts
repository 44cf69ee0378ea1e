/**
 * Hand-over (docs/scale.md, "Hand-over"), against the real local stack with protocol-level
 * agents over real WebSockets: a result that readies a dependent its agent may take gives it
 * that agent in one write, with no build-queue message; what it may not take goes through the
 * queue as before; a hand-over whose slot is gone is taken back and queued; and a handler that
 * dies between the hand-over's writes leaves what the sweeper repairs.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { sweep } from "@nimbus/service";
import { handleAgentFrame } from "../packages/service/src/edges/agent-messages.ts";
import { evaluationsMayWait } from "../packages/service/src/flow/rare-queues.ts";
import { sendToBuildQueue } from "../packages/service/src/storage/build-queues.ts";
import { getDerivation } from "../packages/service/src/storage/derivations.ts";
import { releaseTask, reserveTask } from "../packages/service/src/storage/sessions.ts";
import { recording, type Request } from "./support/count-requests.ts";
import { hello, RawAgent } from "./support/raw-agent.ts";
import { attribute, buildOf, derivation, derivationItem, drv, evaluatedJob, finished, jobView, push, succeeded } from "./support/graph-events.ts";
import { agentSuite } from "./support/agent-suite.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const later = (ms: number) => new Date(Date.now() + ms);

const about = (request: Request, drvPath: string) => JSON.stringify(request.input.Key ?? {}).includes(drvPath);
const isBuildQueueRequest = (r: Request) => r.client === "sqs" && !/Evaluations|Effect/.test(String(r.input.QueueUrl ?? ""));
const isSessionWrite = (r: Request) => r.command === "UpdateItemCommand" && /-Sessions$/.test(r.input.TableName);
/** A reservation of a slot on the Sessions table (storage/sessions.ts `reserveTask`). */
const isReservation = (r: Request) => isSessionWrite(r) && /runningTasks \+ :one/.test(r.input.UpdateExpression ?? "");
/** A slot handed from a finished task to the next in one write (storage/sessions.ts `handOverSlot`). */
const isSlotHandedOn = (r: Request) => isSessionWrite(r) && /REMOVE tasks\.#from/.test(r.input.UpdateExpression ?? "");
/** A slot given back (storage/sessions.ts `releaseTask`). */
const isRelease = (r: Request) => isSessionWrite(r) && /runningTasks - :one/.test(r.input.UpdateExpression ?? "");
/** The lease write of a hand-over: `waiting → building` of `drvPath`. */
const isHandOverLease = (r: Request, drvPath: string) =>
  r.command === "UpdateItemCommand" && /-Derivations$/.test(r.input.TableName) && about(r, drvPath) && r.input.ExpressionAttributeValues?.[":to"] === "building" &&
  r.input.ExpressionAttributeValues?.[":from0"] === "waiting";

/** Any write of `drvPath`'s item. */
const isDerivationWrite = (r: Request, drvPath: string) => r.command === "UpdateItemCommand" && /-Derivations$/.test(r.input.TableName) && about(r, drvPath);

const statuses = (item: Record<string, any> | undefined) => (item?.history ?? []).map((h: { status: string }) => h.status);

describe("hand-over of a build its result readied", () => {
  const suite = agentSuite("hand-over");
  const agentOn = suite.agentOn;
  let stack: TestStack;
  before(() => {
    stack = suite.stack;
  });

  it("gives the next link of a chain to the agent that built the last one: one write, no queue message, and the job ends right", async () => {
    const system = "mips64-linux";
    const on = (name: string, inputs: string[] = []) => derivation(name, inputs, { system });
    const { agent: reporter, connectionId } = await agentOn("chain-reporter", system);
    const jobId = await evaluatedJob(stack, reporter, "acme/hand-over-chain", [on("ho-a"), on("ho-b", ["ho-a"]), on("ho-c", ["ho-b"]), attribute("ho-c")]);
    const a = await buildOf(reporter, "ho-a");
    assert.equal(evaluationsMayWait(), false, "the evaluation queue was found empty (a dispatch looked after the evaluation was taken)");
    const before = await derivationItem(stack, "ho-b");

    const requests = await recording(() => handleAgentFrame(connectionId, succeeded(a)));
    const b = await buildOf(reporter, "ho-b");
    assert.deepEqual(requests.filter((r) => r.client === "sqs"), [], "no SQS request at all: no send, receive or delete for b");
    const item = await derivationItem(stack, "ho-b");
    assert.equal(item?.status, "building");
    assert.equal(item?.lease?.taskId, b.taskId);
    assert.deepEqual(statuses(item).slice(-2), ["waiting", "building"], "straight from waiting to building: never queued");
    assert.equal(item?.version, (before?.version ?? 0) + 1, "one status move");
    assert.ok(item?.queuedAt && item.queuedAt >= (before?.createdAt as string), "queuedAt says when it left waiting (the bench's ready → dispatched)");
    assert.equal(requests.filter((r) => isHandOverLease(r, drv("ho-b"))).length, 1, "one lease write");
    assert.equal(requests.filter((r) => isDerivationWrite(r, drv("ho-b"))).length, 1, "a cleared off b in that write: b's only input, and its edge row said where b may be built");
    assert.equal(item?.pendingInputs, undefined, "nothing pending left on it");
    assert.equal(requests.filter(isSessionWrite).length, 1, "one Sessions write: no release of a's slot, no reservation for b");
    assert.equal(requests.filter(isSlotHandedOn).length, 1, "a's slot handed on to b");
    assert.equal(requests.filter((r) => r.command === "GetItemCommand" && about(r, drv("ho-b"))).length, 0, "b read from its pending-input clear, not again");
    assert.equal(requests.filter((r) => r.command === "PostToConnectionCommand").length, 1, "b's build, carrying a's acknowledgement (no result-ack)");
    assert.deepEqual(b.acks, [a.taskId]);
    const row = await stack.getItem("JobDerivations", { jobId, drvPath: drv("ho-b") });
    assert.equal(row?.status, "waiting", "the job's copy: a build's start is no move of it");
    assert.deepEqual((await jobView(stack, jobId)).counts, { succeeded: 1, building: 1, waiting: 1 }, "the view finds it under way");

    handleAgentFrame(connectionId, succeeded(b)).catch(() => {});
    const c = await buildOf(reporter, "ho-c");
    await handleAgentFrame(connectionId, succeeded(c));
    const job = await finished(stack, jobId);
    assert.equal(job.status, "succeeded");
    assert.deepEqual([job.counts.succeeded, job.counts.building ?? 0, job.counts.queued ?? 0, job.counts.waiting ?? 0], [3, 0, 0, 0], "counts with every move");
    assert.equal((await stack.scan("Sessions")).find((s) => s.connectionId === connectionId)?.runningTasks, 0, "every slot given back");
  });

  it("clears a dependent of two inputs, then hands it over: the input that settles last is not known before its clear", async () => {
    const system = "riscv32-linux";
    const on = (name: string, inputs: string[] = []) => derivation(name, inputs, { system });
    const { agent: reporter, connectionId } = await agentOn("pair-reporter", system, 2);
    await evaluatedJob(stack, reporter, "acme/hand-over-pair", [on("pair-x"), on("pair-y"), on("pair-z", ["pair-x", "pair-y"]), attribute("pair-z")]);
    const [x, y] = [await buildOf(reporter, "pair-x"), await buildOf(reporter, "pair-y")];
    await handleAgentFrame(connectionId, succeeded(x));
    const requests = await recording(() => handleAgentFrame(connectionId, succeeded(y)));
    await buildOf(reporter, "pair-z");
    assert.equal(requests.filter((r) => isDerivationWrite(r, drv("pair-z"))).length, 2, "the clear that leaves nothing pending, then the lease");
    assert.equal(requests.filter((r) => isHandOverLease(r, drv("pair-z"))).length, 1);
    assert.equal((await derivationItem(stack, "pair-z"))?.status, "building");
  });

  it("hands over one dependent per result; another it readies goes through the queue, and so does one for another system", async () => {
    const system = "sparc64-linux";
    const other = "s390x-linux";
    const { agent: reporter, connectionId, sessionId } = await agentOn("fan-reporter", system, 3);
    const events = [
      derivation("fan-a", [], { system }),
      derivation("fan-b", ["fan-a"], { system }),
      derivation("fan-c", ["fan-a"], { system }),
      derivation("fan-x", ["fan-a"], { system: other }),
      ...["fan-b", "fan-c", "fan-x"].map(attribute),
    ];
    const jobId = await evaluatedJob(stack, reporter, "acme/hand-over-fan", events);
    const a = await buildOf(reporter, "fan-a");
    const { agent: helper } = await agentOn("fan-helper", other, 1);
    assert.equal(evaluationsMayWait(), false);

    const requests = await recording(() => handleAgentFrame(connectionId, succeeded(a)));
    await buildOf(reporter, "fan-b");
    await buildOf(reporter, "fan-c");
    const x = await buildOf(helper, "fan-x");
    const [b, c, xItem] = await Promise.all(["fan-b", "fan-c", "fan-x"].map((name) => derivationItem(stack, name)));
    const queued = [b, c].filter((item) => statuses(item).includes("queued"));
    assert.equal(queued.length, 1, "one of b and c was handed over, the other queued");
    assert.ok(statuses(xItem).includes("queued"), "x (another system) went through its queue");
    assert.equal(requests.filter((r) => r.command === "SendMessageCommand" && isBuildQueueRequest(r)).length, 2, "two queue messages: one for b or c, one for x");
    assert.equal(requests.filter((r) => r.command === "ChangeMessageVisibilityCommand").length, 0, "the wake knew the handed-over slot was taken: nothing received was put back");
    const ofReporter = requests.filter((r) => isSessionWrite(r) && r.input.Key?.sessionId === sessionId);
    assert.deepEqual(
      ofReporter.map((r) => (isSlotHandedOn(r) ? "handed on" : isReservation(r) ? "reserved" : "other")),
      ["handed on", "reserved"],
      "a's slot handed on to the hand-over, one reserved for the queued build; none released, none refused",
    );

    await handleAgentFrame(connectionId, succeeded(await buildOf(reporter, "fan-b")));
    await handleAgentFrame(connectionId, succeeded(await buildOf(reporter, "fan-c")));
    helper.send(JSON.parse(succeeded(x)));
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });

  it("hands nothing over while an evaluation may be waiting: the freed slot takes the new job's evaluation first", async () => {
    const system = "hppa-linux";
    const on = (name: string, inputs: string[] = []) => derivation(name, inputs, { system });
    const { agent: reporter, connectionId } = await agentOn("busy-reporter", system);
    const jobId = await evaluatedJob(stack, reporter, "acme/hand-over-first", [on("eval-a"), on("eval-b", ["eval-a"]), attribute("eval-b")]);
    const a = await buildOf(reporter, "eval-a");
    // Another job starts while the only agent builds a: its evaluation waits, and the handler queuing it forgets it ever saw that queue empty.
    const second = await push(stack, "acme/hand-over-second", "9".repeat(40));
    assert.equal(evaluationsMayWait(), true);

    await handleAgentFrame(connectionId, succeeded(a));
    const evaluation = (await eventually(async () => reporter.messages.find((m) => m.type === "evaluate" && m.jobId === second), "the second job's evaluation")) as { taskId: string };
    assert.equal(reporter.messages.filter((m) => m.type === "build" && m.drvPath === drv("eval-b")).length, 0, "b was not handed over");
    assert.equal((await derivationItem(stack, "eval-b"))?.status, "queued", "b waits in its queue");

    reporter.send({ type: "evaluation-done", taskId: evaluation.taskId, batches: 0, status: "succeeded" });
    const b = await buildOf(reporter, "eval-b");
    await handleAgentFrame(connectionId, succeeded(b));
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });

  it("takes a hand-over back and queues it when the slot was taken meanwhile (given back and taken by another dispatch first)", async () => {
    const system = "m68k-linux";
    const on = (name: string, inputs: string[] = []) => derivation(name, inputs, { system });
    const { agent: reporter, connectionId, sessionId } = await agentOn("race-reporter", system);
    const jobId = await evaluatedJob(stack, reporter, "acme/hand-over-race", [on("race-a"), on("race-b", ["race-a"]), attribute("race-b")]);
    const a = await buildOf(reporter, "race-a");
    const { agent: idle } = await agentOn("race-idle", system);
    assert.equal(evaluationsMayWait(), false);

    // Just before the hand-over takes a's slot, a's task is gone from the session (as a heartbeat's look frees it) and
    // another task takes the slot: the hand-on is refused, and so is a reservation.
    const intruder = { kind: "build", drvPath: drv("race-intruder"), attempt: 0, startedAt: new Date().toISOString() };
    let filled = false;
    const requests = await recording(
      () => handleAgentFrame(connectionId, succeeded(a)),
      async (request) => {
        if (filled || !isSlotHandedOn(request) || request.input.Key?.sessionId !== sessionId) return;
        filled = true;
        assert.ok(await releaseTask(sessionId, a.taskId));
        assert.ok(await reserveTask(sessionId, "b-intruder-0", intruder, 1));
      },
    );
    assert.ok(filled, "the hand-over tried to take a's slot");
    const afterHandOn = requests.slice(requests.findIndex(isSlotHandedOn) + 1).filter((r) => isSessionWrite(r) && r.input.Key?.sessionId === sessionId);
    assert.ok(afterHandOn.some(isReservation), "refused, it asked for a slot as any reservation");
    assert.equal(requests.filter((r) => isHandOverLease(r, drv("race-b"))).length, 1, "it leased b");
    const b = await buildOf(idle, "race-b");
    const item = await derivationItem(stack, "race-b");
    assert.deepEqual(statuses(item).slice(-3), ["waiting", "queued", "building"], "the taken-back lease left no attempt in the history");
    assert.equal(item?.lease?.taskId, b.taskId);
    assert.equal(item?.history.at(-1)?.agent, "race-idle");
    assert.equal(requests.filter((r) => r.command === "SendMessageCommand" && isBuildQueueRequest(r)).length, 1, "b went to its queue");
    assert.equal(reporter.messages.filter((m) => m.type === "build" && m.drvPath === drv("race-b")).length, 0);

    assert.ok(await releaseTask(sessionId, "b-intruder-0"));
    idle.send(JSON.parse(succeeded(b)));
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });
});

describe("a build's queue message delivered again while its result is handled", () => {
  const suite = agentSuite("duplicate-message");

  // The slot a result frees cannot be handed on to the same task id in one write (its paths would overlap):
  // a second copy of the finished build's message, received by the reporter's dispatch, is refused as stale.
  it("takes the finished build's second message for stale: no error, nothing built twice, the slot given back", async () => {
    const system = "sh4-linux";
    const { agent: reporter, connectionId, sessionId } = await suite.agentOn("duplicate-reporter", system);
    const jobId = await evaluatedJob(suite.stack, reporter, "acme/duplicate-message", [derivation("dup-a", [], { system }), attribute("dup-a")]);
    const a = await buildOf(reporter, "dup-a");
    // A re-send (the sweeper's, numbered so FIFO deduplication lets it through) of the message the build came from.
    await sendToBuildQueue({ ...(await getDerivation(drv("dup-a")))!, resend: 1 });

    const requests = await recording(() => handleAgentFrame(connectionId, succeeded(a)));
    assert.ok(
      requests.some((r) => r.command === "ReceiveMessageCommand" && isBuildQueueRequest(r)),
      "the reporter's dispatch looked at the queue holding the second message",
    );
    assert.equal((await finished(suite.stack, jobId)).status, "succeeded");
    assert.equal(reporter.messages.filter((m) => m.type === "build" && m.drvPath === drv("dup-a")).length, 1, "built once");
    const session = (await suite.stack.scan("Sessions")).find((s) => s.sessionId === sessionId);
    assert.deepEqual([session?.runningTasks, Object.keys(session?.tasks ?? {})], [0, []], "the slot given back, no task held");
  });
});

describe("a handler that dies in a hand-over", () => {
  let stack: TestStack;
  let token: string;
  const open: RawAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("hand-over-deaths")).token;
  });
  after(async () => {
    for (const agent of open) agent.close();
    await stack?.cleanup();
  });
  afterEach(() => {
    for (const agent of open.splice(0)) agent.close();
  });

  /** A chain a → b on its own system, its agent holding a's build; `die` picks the request at which the result's handler dies. */
  async function dieHandingOver(name: string, die: (request: Request, b: string) => boolean) {
    const system = `${name}-linux`;
    const agent = await RawAgent.connect(stack.agentSocketUrl, token);
    open.push(agent);
    const welcome = await agent.request(hello({ hostname: `${name}-agent`, systems: [system], systemFeatures: [], concurrentTasks: 1 }));
    const connectionId = (welcome as { connectionId: string }).connectionId;
    const sessionId = (await stack.scan("Sessions")).find((s) => s.connectionId === connectionId)?.sessionId as string;
    const jobId = await push(stack, `acme/${name}`, "8".repeat(40));
    const task = (await eventually(async () => agent.messages.find((m) => m.type === "evaluate" && m.jobId === jobId), "the evaluation")) as { taskId: string };
    const events = [derivation(`${name}-a`, [], { system }), derivation(`${name}-b`, [`${name}-a`], { system }), attribute(`${name}-b`)];
    assert.equal((await agent.request({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })).type, "ack");
    agent.send({ type: "evaluation-done", taskId: task.taskId, batches: 1, status: "succeeded" });
    const a = await buildOf(agent, `${name}-a`);
    assert.equal(evaluationsMayWait(), false, "a hand-over will be tried");

    let died = false;
    await assert.rejects(
      recording(
        () => handleAgentFrame(connectionId, succeeded(a)),
        async (request) => {
          if (died || !die(request, drv(`${name}-b`))) return;
          died = true;
          throw new Error("the handler died here (a Lambda timeout)");
        },
      ),
      /the handler died here/,
    );
    assert.ok(died);
    return { agent, connectionId, sessionId, jobId };
  }

  it("at the slot's reservation, after the lease: the sweeper hands the orphaned lease back and the build is done", async () => {
    const { agent, connectionId, sessionId, jobId } = await dieHandingOver("orphan", (request) => isSlotHandedOn(request));
    // The lease was sent beside the slot's hand-on: the handler's death does not wait for it to land.
    const leased = await eventually(async () => {
      const item = await derivationItem(stack, "orphan-b");
      return item?.status === "building" ? item : undefined;
    }, "the lease to be written");
    assert.equal(leased?.lease?.sessionId, sessionId);
    const session = (await stack.scan("Sessions")).find((s) => s.sessionId === sessionId);
    assert.ok(!Object.keys((session?.tasks as object) ?? {}).includes(leased?.lease?.taskId), "no slot holds it");
    assert.equal(session?.runningTasks, 1, "a's finished task still holds its slot (the hand-on never happened)");
    assert.equal(agent.messages.filter((m) => m.type === "build" && m.drvPath === drv("orphan-b")).length, 0, "never sent");

    await sweep(later(45_000));
    const b = await buildOf(agent, "orphan-b");
    const item = await derivationItem(stack, "orphan-b");
    assert.equal(item?.retries, 1, "handed back as a retry (its session did not hold it)");
    await handleAgentFrame(connectionId, succeeded(b));
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });

  it("at the lease, after the slot's reservation: the sweeper gives the slot back and tells the settled input's dependents again", async () => {
    const { agent, connectionId, sessionId, jobId } = await dieHandingOver("abandoned", (request, b) => isHandOverLease(request, b));
    assert.equal((await derivationItem(stack, "abandoned-b"))?.status, "waiting", "the lease was never written");
    const session = (await stack.scan("Sessions")).find((s) => s.sessionId === sessionId);
    assert.equal(session?.runningTasks, 1, "the slot is held for it");

    const report = await sweep(later(45_000));
    assert.equal(report.slotsReleased, 1);
    const b = await buildOf(agent, "abandoned-b");
    assert.ok(statuses(await derivationItem(stack, "abandoned-b")).includes("queued"), "queued by the sweeper's settle, which hands nothing over");
    await handleAgentFrame(connectionId, succeeded(b));
    // The dead handler's count of a's settle may be lost with it (its copy was still being
    // written when it died): the job's kept counts then hold a as building, and the sweeper,
    // which looks at the rows, ends the job (docs/reliability.md, "No job hangs").
    await sweep(later(90_000));
    assert.equal((await finished(stack, jobId)).status, "succeeded");
  });
});
