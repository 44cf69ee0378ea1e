/**
 * Fewer AWS requests per build (issue #11, docs/scale.md "The per-build request budget"), each
 * saving shown to keep what it stands in for, against the real local stack: a derivation's
 * moves are mirrored into the jobs its item names (no byDrv Query) and into every job that
 * needs it whenever that list is not kept whole; a frame skips the Connections read but is
 * still refused from a connection that is gone or replaced; a settle trusts the job's kept
 * counts to leave it running, while the sweeper looks without them.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DerivationEvent } from "@nimbus/protocol";
import { sweep } from "@nimbus/service";
import { handleAgentFrame } from "../packages/service/src/edges/agent-messages.ts";
import { finishJobIfDone } from "../packages/service/src/flow/job-finish.ts";
import { freshDerivation } from "../packages/service/src/flow/register-derivation.ts";
import { countDynamoRequests, recording } from "./support/count-requests.ts";
import { buildQueueUrl } from "../packages/service/src/storage/build-queues.ts";
import { createDerivation, getDerivation, MAX_KNOWN_JOBS, moveDerivation } from "../packages/service/src/storage/derivations.ts";
import { countingMoves, noteCountMove } from "../packages/service/src/storage/job-counts.ts";
import { mirrorStatus, putJobDerivation, putNewJobDerivations } from "../packages/service/src/storage/job-derivations.ts";
import { jobStatusKey } from "../packages/service/src/storage/keys.ts";
import { hello, newSession, RawAgent } from "./support/raw-agent.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { attribute, buildOf, derivation, drv, finished, jobView, push, succeeded } from "./support/graph-events.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const later = (ms: number) => new Date(Date.now() + ms);

/** Counts the service's DynamoDB requests of one command on one table (index; `about` an item) while `fn` runs. */
const counting = (command: string, table: string, fn: () => Promise<void>, index?: string, about?: (input: { Key?: Record<string, unknown> }) => boolean) =>
  countDynamoRequests((name, input) => {
    const { TableName, IndexName } = input as { TableName?: string; IndexName?: string };
    return name === command && TableName?.includes(table) === true && (index === undefined || IndexName === index) && (!about || about(input));
  }, fn);

describe("the request diet", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await stack.createToken("diet")).token;
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack?.cleanup();
  });

  const event = (name: string): DerivationEvent =>
    ({ kind: "derivation", drvPath: drv(name), system: "riscv64-linux", requiredFeatures: [], inputDrvs: [], outputs: { out: `/nix/store/${name}-out` } }) as DerivationEvent;
  /** A raw agent of one slot for `systems`, the job a push starts, and the evaluation the agent was given. */
  const evaluating = async (hostname: string, systems: string[], repository: string, commit: string) => {
    const agent = await RawAgent.connect(stack.agentSocketUrl, token);
    try {
      const welcome = await agent.request(hello({ hostname, systems, systemFeatures: [], concurrentTasks: 1 }));
      const connectionId = (welcome as { connectionId: string }).connectionId;
      const jobId = await push(stack, repository, commit);
      const task = (await eventually(async () => agent.messages.find((m) => m.type === "evaluate"), "the evaluation")) as { taskId: string };
      return { agent, connectionId, jobId, task };
    } catch (error) {
      agent.close();
      throw error;
    }
  };
  const rowOf = async (jobId: string, drvPath: string) => (await stack.getItem("JobDerivations", { jobId, drvPath }))?.status;

  it("mirrors a move into the jobs the derivation names, without the index; once a restart drops the list, into every job the index finds", async () => {
    const drvPath = drv("diet-listed");
    const created = freshDerivation("job-a", event("diet-listed"), [], new Date().toISOString());
    assert.ok(await createDerivation(created));
    await putNewJobDerivations("job-a", [{ copy: created }]);
    await putJobDerivation("job-b", created);
    assert.deepEqual([...((await getDerivation(drvPath))?.jobIds ?? [])].sort(), ["job-a", "job-b"], "a registration of an unsettled derivation adds its job");
    // A row the list does not name (the index finds it): a list kept whole would name it.
    await stack.put("JobDerivations", [{ jobId: "job-x", drvPath, status: "waiting", jobStatus: jobStatusKey("job-x", "waiting"), version: 0 }]);

    const queued = await moveDerivation(drvPath, { from: ["waiting"], to: "queued" });
    let told: string[] = [];
    const queries = await counting("QueryCommand", "JobDerivations", async () => {
      told = await mirrorStatus(queued!);
    });
    assert.equal(queries, 0, "the mirror asked no index");
    assert.deepEqual(told.sort(), ["job-a", "job-b"]);
    assert.deepEqual([await rowOf("job-a", drvPath), await rowOf("job-b", drvPath), await rowOf("job-x", drvPath)], ["queued", "queued", "waiting"]);

    const building = await moveDerivation(drvPath, { from: ["queued"], to: "building" });
    const failed = await moveDerivation(drvPath, { from: ["building"], to: "failed" });
    assert.ok(building && failed?.jobIds, "moves among unsettled statuses keep the list");
    // A registration of a settled derivation does not add itself: the list is dropped before such a derivation moves again.
    await putJobDerivation("job-c", failed);
    assert.deepEqual([...((await getDerivation(drvPath))?.jobIds ?? [])].sort(), ["job-a", "job-b"]);
    const restarted = await moveDerivation(drvPath, { from: ["failed"], to: "waiting", addAttempt: 1 });
    assert.equal(restarted?.jobIds, undefined, "a move out of a settled status drops the list");
    assert.deepEqual((await mirrorStatus(restarted!)).sort(), ["job-a", "job-b", "job-c", "job-x"], "every job the index finds");
    assert.equal(await rowOf("job-c", drvPath), "waiting");
    await putJobDerivation("job-d", restarted!);
    assert.equal((await getDerivation(drvPath))?.jobIds, undefined, "a registration does not start a list it would not know whole");
  });

  it("drops a derivation's list of jobs past its bound, and the index is asked again", async () => {
    const drvPath = drv("diet-popular");
    const created = freshDerivation("job-0", event("diet-popular"), [], new Date().toISOString());
    assert.ok(await createDerivation(created));
    await putNewJobDerivations("job-0", [{ copy: created }]);
    for (let i = 1; i < MAX_KNOWN_JOBS; i++) await putJobDerivation(`job-${i}`, created);
    assert.equal((await getDerivation(drvPath))?.jobIds?.size, MAX_KNOWN_JOBS);
    await putJobDerivation(`job-${MAX_KNOWN_JOBS}`, created);
    assert.equal((await getDerivation(drvPath))?.jobIds, undefined);
    const queued = await moveDerivation(drvPath, { from: ["waiting"], to: "queued" });
    const queries = await counting("QueryCommand", "JobDerivations", async () => {
      assert.equal((await mirrorStatus(queued!)).length, MAX_KNOWN_JOBS + 1);
    });
    assert.equal(queries, 1);
  });

  it("skips the Connections read of a known connection's frames, and still refuses frames from one that is replaced or gone", async () => {
    const session = newSession();
    const first = await RawAgent.connect(stack.agentSocketUrl, token);
    const welcome = await first.request(hello({ hostname: "diet-first" }, session));
    assert.equal(welcome.type, "welcome");
    const firstId = (welcome as { connectionId: string }).connectionId;
    const buildLog = { type: "build-log", taskId: "b-none-0", seq: 0, lines: ["x"] };
    let answer;
    const reads = await counting("GetItemCommand", "Connections", async () => {
      answer = await first.request(buildLog);
    });
    assert.equal(reads, 0, "the session a connection said hello for is remembered");
    assert.equal((answer as { code?: string } | undefined)?.code, "unknown-task", "the frame spoke for the session");

    // Replaced: the session says hello on a new connection; the first is closed, and a frame that still came on it changes nothing.
    const second = await RawAgent.connect(stack.agentSocketUrl, token);
    assert.equal((await second.request(hello({ hostname: "diet-first" }, session))).type, "welcome");
    await first.waitClosed();
    await handleAgentFrame(firstId, JSON.stringify({ type: "pause" }));
    assert.equal((await stack.getItem("Sessions", { sessionId: session.id }))?.draining, undefined, "a frame from the replaced connection was refused");

    // Gone: the second connection closes (its session is detached); a late frame on it changes nothing either.
    const secondId = ((await stack.getItem("Sessions", { sessionId: session.id }))?.connectionId as string) ?? "";
    assert.equal((await second.request(buildLog)).type, "error");
    second.close();
    await eventually(async () => ((await stack.getItem("Sessions", { sessionId: session.id }))?.connectionId === undefined ? true : undefined), "the session detached");
    await handleAgentFrame(secondId, JSON.stringify({ type: "pause" }));
    assert.equal((await stack.getItem("Sessions", { sessionId: session.id }))?.draining, undefined, "a frame from the gone connection was refused");

    // The same frame on the connection the session speaks on is taken (the check above is not vacuous).
    const third = await RawAgent.connect(stack.agentSocketUrl, token);
    const thirdWelcome = await third.request(hello({ hostname: "diet-first" }, session));
    await handleAgentFrame((thirdWelcome as { connectionId: string }).connectionId, JSON.stringify({ type: "pause" }));
    assert.equal((await stack.getItem("Sessions", { sessionId: session.id }))?.draining, true);
    third.close();
  });

  it("leaves a job running on its kept counts after a settle, and the sweeper, which looks without them, finishes it when they are off", async () => {
    const agent = ScriptedAgent.create("diet-builder", { concurrentTasks: 2 }, { evaluate: () => [derivation("diet-counted"), attribute("diet-counted")] });
    agents.push(agent);
    await agent.connect(stack.agentSocketUrl, token);
    const jobId = await push(stack, "acme/diet-counted");
    assert.equal((await finished(stack, jobId)).status, "succeeded");
    // As if a Lambda died before its count write: the job's counts still hold a build, while its rows are all settled.
    const { finishedAt: _finished, ...running } = (await stack.getItem("Jobs", { jobId }))!;
    // (A build under way is counted with the queued ones: storage/job-counts.ts.)
    await stack.put("Jobs", [{ ...running, status: "building", activeShard: "a", count_queued: 2, count_building: 0, count_succeeded: 0 }]);

    let outcome: unknown = "not run";
    const looks = await counting(
      "QueryCommand",
      "JobDerivations",
      async () => {
        outcome = await countingMoves(async () => {
          // A settle's own move of this job, then its look: the counts, once written, still hold a build.
          await noteCountMove(jobId, "building", "succeeded");
          return finishJobIfDone(jobId, new Date(), undefined, { counted: true });
        });
      },
      "byJobStatus",
    );
    assert.equal(outcome, undefined, "the settle left the job running");
    assert.equal(looks, 0, "on the counts alone, without the index");
    const job = await stack.getItem("Jobs", { jobId });
    assert.deepEqual([job?.status, job?.count_queued, job?.count_building, job?.count_succeeded], ["building", 1, 0, 1], "its moves were written by that look");

    await sweep(later(5 * 60_000));
    assert.equal((await finished(stack, jobId, 5_000)).status, "succeeded", "the sweeper finished it from its rows");
    const exact = await stack.getItem("Jobs", { jobId });
    assert.deepEqual([exact?.count_queued, exact?.count_building, exact?.count_succeeded], [0, 0, 1], "with exact counts");
    agent.close();
  });

  it("writes a frame's moves of a job's counts once: the settle's job check waits for the build its follow-up dispatch starts", async () => {
    const system = "sh4-linux";
    const on = (name: string) => ({ ...derivation(name), system });
    const { agent, connectionId, jobId, task } = await evaluating("diet-counts", [system], "acme/diet-counts", "5".repeat(40));
    try {
      const events = [on("diet-x"), on("diet-y"), attribute("diet-x"), attribute("diet-y")];
      assert.equal((await agent.request({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })).type, "ack");
      // Handled to its end before the count below: its follow-up dispatch sends the first build
      // before its own count write, which must not fall into the window counted.
      await handleAgentFrame(connectionId, JSON.stringify({ type: "evaluation-done", taskId: task.taskId, batches: 1, status: "succeeded" }));
      // One slot: the first build is sent, the other waits in its queue for the slot its result frees.
      const first = (await eventually(async () => agent.messages.find((m) => m.type === "build"), "a build")) as { taskId: string; drvPath: string };
      const result = (build: { taskId: string; drvPath: string }) =>
        JSON.stringify({ type: "build-result", taskId: build.taskId, drvPath: build.drvPath, status: "succeeded", outputs: { out: `${build.drvPath}-out` } });
      const writes = await counting("UpdateItemCommand", "Jobs", () => handleAgentFrame(connectionId, result(first)), undefined, (input) => input.Key?.jobId === jobId);
      const second = (await eventually(async () => agent.messages.find((m) => m.type === "build" && m.drvPath !== first.drvPath), "the other build")) as { taskId: string; drvPath: string };
      assert.equal(writes, 1, "the settle's move and the next build's start in one count write, which the job check read");
      const job = await stack.getItem("Jobs", { jobId });
      // The second build's start is no move of the counts: a build under way is counted with the queued ones.
      assert.deepEqual([job?.status, job?.count_succeeded, job?.count_building ?? 0, job?.count_queued], ["building", 1, 0, 1], "the job runs on, its counts whole");
      await handleAgentFrame(connectionId, result(second));
      const done = await stack.getItem("Jobs", { jobId });
      assert.equal(done?.status, "succeeded", "the frame that settled the last build ended the job before it was done");
      assert.deepEqual([done?.count_succeeded, done?.count_building, done?.count_queued, done?.count_waiting], [2, 0, 0, 0]);
    } finally {
      agent.close();
    }
  });

  it("starts a build without a write of its job's rows or counts; the job's view tells its builds under way from its queued ones", async () => {
    const system = "s390x-linux";
    const on = (name: string) => ({ ...derivation(name), system });
    const { agent, connectionId, jobId, task } = await evaluating("diet-pushing", [system], "acme/diet-pushing", "7".repeat(40));
    try {
      const events = [on("push-x"), on("push-y"), on("push-z"), attribute("push-x"), attribute("push-y"), attribute("push-z")];
      assert.equal((await agent.request({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })).type, "ack");
      await handleAgentFrame(connectionId, JSON.stringify({ type: "evaluation-done", taskId: task.taskId, batches: 1, status: "succeeded" }));
      const builds = () => agent.messages.filter((m) => m.type === "build") as Array<{ taskId: string; drvPath: string }>;
      const first = await eventually(async () => builds()[0], "a build");
      // The view finds it under way once its lease is written (the byBuilding index): looked at until then.
      const underWay = await eventually(async () => {
        const { counts } = await jobView(stack, jobId);
        return counts.building === 1 ? counts : undefined;
      }, "the first build's copy");
      assert.deepEqual(underWay, { queued: 2, building: 1 }, "one slot: one build under way, two queued");
      // Its outputs are being pushed: the slot goes to the next build, which the frame leases and sends.
      const pushing = JSON.stringify({ type: "build-pushing", taskId: first.taskId, drvPath: first.drvPath });
      let countWrites = 0;
      const rowWrites = await counting("UpdateItemCommand", "JobDerivations", async () => {
        countWrites = await counting("UpdateItemCommand", "Jobs", () => handleAgentFrame(connectionId, pushing), undefined, (input) => input.Key?.jobId === jobId);
      });
      await eventually(async () => builds()[1], "the next build");
      assert.equal(countWrites, 0, "the next build's start moves no count: a build under way is counted with the queued ones");
      assert.equal(rowWrites, 0, "nor the job's row of it, which still says queued");
      assert.equal(await rowOf(jobId, builds()[1]!.drvPath), "queued");
      const job = await stack.getItem("Jobs", { jobId });
      assert.deepEqual([job?.count_queued, job?.count_building ?? 0], [3, 0], "kept as one number");
      assert.deepEqual((await jobView(stack, jobId)).counts, { queued: 1, building: 2 }, "told apart by the builds under way");
      const page = (await stack.api("GET", `/api/jobs/${jobId}/derivations?status=building`)).body as { derivations: { drvPath: string; status: string }[] };
      assert.deepEqual(page.derivations.map((d) => [d.drvPath, d.status]).sort(), [first, builds()[1]!].map((b) => [b.drvPath, "building"]).sort(), "listed as building");
      const queuedPage = (await stack.api("GET", `/api/jobs/${jobId}/derivations?status=queued`)).body as { derivations: { drvPath: string }[] };
      assert.equal(queuedPage.derivations.length, 1, "and left out of the queued ones, whose rows they share");
    } finally {
      agent.close();
    }
  });

  it("writes a job's copy of a derivation its registration queued once: the queue's mirror, not the registration's look again as well", async () => {
    const system = "alpha-linux";
    const { agent, connectionId, jobId, task } = await evaluating("diet-evaluator", ["vax-linux"], "acme/diet-registered", "6".repeat(40));
    try {
      // Its one input was built by an earlier job: read only by the registration's fresh look,
      // which queues it (one created with nothing pending is created queued, its copy with it).
      const at = new Date().toISOString();
      await stack.setAttributes("Derivations", { drvPath: drv("diet-src") }, {
        system, requiredFeatures: [], outputs: { out: `${drv("diet-src")}-out` }, status: "succeeded", version: 3, queueKey: `${system}|`, attempt: 0, createdAt: at, updatedAt: at,
      });
      // No agent builds for this system: the derivation stays queued, and no lease's copy comes between.
      const events = [{ ...derivation("diet-leaf", ["diet-src"]), system }, { ...derivation("diet-top", ["diet-leaf"]), system }, attribute("diet-top")];
      const frame = JSON.stringify({ type: "evaluation-events", taskId: task.taskId, seq: 0, events });
      const copies = await counting("UpdateItemCommand", "JobDerivations", () => handleAgentFrame(connectionId, frame), undefined, (input) =>
        JSON.stringify(input.Key ?? {}).includes(drv("diet-leaf")),
      );
      assert.equal(copies, 1, "the leaf's queued copy, written once");
      assert.deepEqual([await rowOf(jobId, drv("diet-leaf")), await rowOf(jobId, drv("diet-top"))], ["queued", "waiting"]);
      const job = await stack.getItem("Jobs", { jobId });
      assert.deepEqual([job?.count_queued, job?.count_waiting], [1, 1], "counted once");
    } finally {
      agent.close();
    }
  });

  it("gives a build its result queued to the agent that reported it, without looking for idle agents; one it may not take goes to an idle agent that can", async () => {
    const system = "mips64-linux";
    const on = (name: string, inputs: string[] = []) => ({ ...derivation(name, inputs), system });
    const events = [on("diet-a"), on("diet-b", ["diet-a"]), on("diet-c", ["diet-b"]), attribute("diet-c")];
    const agentOn = { systems: [system], systemFeatures: [], concurrentTasks: 1 };
    const reporter = await RawAgent.connect(stack.agentSocketUrl, token);
    const idle = await RawAgent.connect(stack.agentSocketUrl, token);
    try {
      const welcome = await reporter.request(hello({ hostname: "diet-reporter", ...agentOn }));
      const reporterId = (welcome as { connectionId: string }).connectionId;
      const jobId = await push(stack, "acme/diet-chain", "4".repeat(40));
      const task = (await eventually(async () => reporter.messages.find((m) => m.type === "evaluate"), "the evaluation")) as { taskId: string };
      assert.equal((await reporter.request({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })).type, "ack");
      reporter.send({ type: "evaluation-done", taskId: task.taskId, batches: 1, status: "succeeded" });
      const buildOf = (agent: RawAgent, name: string) =>
        eventually(async () => agent.messages.find((m) => m.type === "build" && m.drvPath === drv(name)) as { taskId: string; drvPath: string } | undefined, `${name}'s build`);
      const a = await buildOf(reporter, "diet-a");
      const idleId = ((await idle.request(hello({ hostname: "diet-idle", ...agentOn }))) as { type: string; connectionId: string }).connectionId;
      assert.ok(idleId, "welcomed");
      const result = (build: { taskId: string; drvPath: string }) =>
        JSON.stringify({ type: "build-result", taskId: build.taskId, drvPath: build.drvPath, status: "succeeded", outputs: { out: `${build.drvPath}-out` } });

      let copies = 0;
      let countWrites = 0;
      let slotWrites = 0;
      let sessionReads = 0;
      const looks = await counting(
        "QueryCommand",
        "Sessions",
        async () => {
          // Its own session's reads only: the idle agent's hello may still be dispatching to it.
          const reporterSession = (await stack.scan("Sessions")).find((item) => item.connectionId === reporterId)?.sessionId;
          sessionReads = await counting(
            "GetItemCommand",
            "Sessions",
            async () => {
              copies = await counting("UpdateItemCommand", "JobDerivations", async () => {
                countWrites = await counting("UpdateItemCommand", "Jobs", async () => {
                  slotWrites = await counting("UpdateItemCommand", "Sessions", () => handleAgentFrame(reporterId, result(a)), undefined, (input) =>
                    JSON.stringify(input.Key ?? {}).includes(String(reporterSession)),
                  );
                }, undefined, (input) => input.Key?.jobId === jobId);
              });
            },
            undefined,
            (input) => JSON.stringify(input.Key ?? {}).includes(String(reporterSession)),
          );
        },
        "byCapability",
      );
      assert.equal(sessionReads, 0, "none: the result went on the copy the reservation of a's slot kept, the wake that gave it b needed none, and no follow-up dispatch read it again");
      const b = await buildOf(reporter, "diet-b");
      assert.equal(looks, 0, "the reporter took the build its result queued: no idle agent was looked for");
      assert.equal(copies, 1, "a's copy (succeeded) alone: b, handed to the reporter, keeps its row as it was (waiting)");
      assert.equal(slotWrites, 1, "a's slot handed on to b in one write: neither released nor reserved apart");
      assert.equal(countWrites, 1, "one write of the job's counts: a's settle, b's start, and the settle's job check on its return");
      assert.deepEqual([await rowOf(jobId, drv("diet-a")), await rowOf(jobId, drv("diet-b"))], ["succeeded", "waiting"]);
      const counts = await stack.getItem("Jobs", { jobId });
      assert.deepEqual([counts?.count_succeeded, counts?.count_building ?? 0, counts?.count_queued ?? 0, counts?.count_waiting], [1, 0, 0, 2], "the counts hold every move (b's build with the waiting, as its row)");
      assert.deepEqual((await jobView(stack, jobId)).counts, { succeeded: 1, building: 1, waiting: 1 }, "the view tells b's build apart");
      assert.equal(idle.messages.filter((m) => m.type === "build").length, 0);

      // Paused, the reporter takes nothing new: the build its result queues goes to the idle agent, found through the index.
      await handleAgentFrame(reporterId, JSON.stringify({ type: "pause" }));
      const looked = await counting("QueryCommand", "Sessions", () => handleAgentFrame(reporterId, result(b)), "byCapability");
      const c = await buildOf(idle, "diet-c");
      assert.ok(looked > 0, "the idle agents were looked for");
      assert.equal(reporter.messages.filter((m) => m.type === "build" && m.drvPath === drv("diet-c")).length, 0);

      // The last settle's job check, made once the frame's moves are written, ends the job before the frame is done.
      await handleAgentFrame(idleId, result(c));
      const job = await stack.getItem("Jobs", { jobId });
      assert.equal(job?.status, "succeeded", "finished by the frame that settled its last derivation");
      assert.deepEqual([job?.count_succeeded, job?.count_building, job?.count_queued, job?.count_waiting], [3, 0, 0, 0]);
    } finally {
      reporter.close();
      idle.close();
    }
  });

  it("creates a derivation ready at registration queued, in the write that creates it: no move after, and it is on its queue", async () => {
    const system = "sparc64-linux";
    const on = (name: string, inputs: string[] = []) => ({ ...derivation(name, inputs), system });
    const events = [on("born-a"), on("born-b"), on("born-top", ["born-a", "born-b"]), attribute("born-top")];
    const evaluator = await RawAgent.connect(stack.agentSocketUrl, token);
    const builder = await RawAgent.connect(stack.agentSocketUrl, token);
    try {
      // It cannot build them: nothing is leased while the batch is registered.
      const welcome = await evaluator.request(hello({ hostname: "born-evaluator", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 1 }));
      const evaluatorId = (welcome as { connectionId: string }).connectionId;
      await push(stack, "acme/born-queued", "6".repeat(40));
      const task = (await eventually(async () => evaluator.messages.find((m) => m.type === "evaluate"), "the evaluation")) as { taskId: string };
      const moves = await counting("UpdateItemCommand", "Derivations", () =>
        handleAgentFrame(evaluatorId, JSON.stringify({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })),
      );
      assert.equal(moves, 0, "the two ready ones were created queued; the third waits for them, created waiting");
      for (const name of ["born-a", "born-b"]) {
        const item = (await stack.getItem("Derivations", { drvPath: drv(name) }))!;
        assert.equal(item.status, "queued", name);
        assert.equal(item.version, 1, `${name}: one move counted, as waiting → queued would`);
        assert.deepEqual((item.history as { status: string }[]).map((h) => h.status), ["waiting", "queued"]);
        assert.ok(item.queuedShard && item.queuedAt, `${name} is in the sweeper's index of queued work`);
      }
      assert.equal((await stack.getItem("Derivations", { drvPath: drv("born-top") }))?.status, "waiting");
      const jobId = (await stack.scan("JobDerivations")).find((r) => r.drvPath === drv("born-top"))?.jobId as string;
      assert.deepEqual([await rowOf(jobId, drv("born-a")), await rowOf(jobId, drv("born-b"))], ["queued", "queued"], "the job's rows say queued");
      assert.deepEqual((await jobView(stack, jobId)).counts, { queued: 2, waiting: 1 }, "and its counts");
      // On the queue: an agent that can build them is given both.
      assert.equal((await builder.request(hello({ hostname: "born-builder", systems: [system], systemFeatures: [], concurrentTasks: 2 }))).type, "welcome");
      const built = await eventually(async () => {
        const names = builder.messages.flatMap((m) => (m.type === "build" ? [m.drvPath] : []));
        return names.length === 2 ? names.sort() : undefined;
      }, "both builds");
      assert.deepEqual(built, [drv("born-a"), drv("born-b")].sort());
    } finally {
      evaluator.close();
      builder.close();
    }
  });

  it("gives a batch's ready derivations to an idle agent before it writes the edges; built before them, their dependent is still queued", async () => {
    const system = "s390-linux";
    const on = (name: string, inputs: string[] = []) => ({ ...derivation(name, inputs), system });
    const events = [on("early-a"), on("early-b"), on("early-top", ["early-a", "early-b"]), attribute("early-top")];
    const evaluator = await RawAgent.connect(stack.agentSocketUrl, token);
    const builder = await RawAgent.connect(stack.agentSocketUrl, token);
    try {
      const evaluatorId = ((await evaluator.request(hello({ hostname: "early-evaluator", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 1 }))) as { connectionId: string }).connectionId;
      const jobId = await push(stack, "acme/early-roots", "4".repeat(40));
      const task = (await eventually(async () => evaluator.messages.find((m) => m.type === "evaluate"), "the evaluation")) as { taskId: string };
      // Idle before the batch (any agent may evaluate: it joins once the evaluation is taken).
      const builderId = ((await builder.request(hello({ hostname: "early-builder", systems: [system], systemFeatures: [], concurrentTasks: 2 }))) as { connectionId: string }).connectionId;
      // The worst order the early wake allows: both roots built and settled before the batch writes any edge.
      let beforeEdges: string[] | undefined;
      const requests = await recording(
        () => handleAgentFrame(evaluatorId, JSON.stringify({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })),
        async (request) => {
          if (beforeEdges || request.command !== "BatchWriteItemCommand" || !Object.keys(request.input.RequestItems ?? {}).some((t) => t.includes("Edges"))) return;
          beforeEdges = builder.messages.flatMap((m) => (m.type === "build" ? [m.drvPath] : [])).sort();
          for (const name of ["early-a", "early-b"]) await handleAgentFrame(builderId, succeeded(await buildOf(builder, name)));
        },
      );
      assert.deepEqual(beforeEdges, [drv("early-a"), drv("early-b")].sort(), "both were handed out before the edges were written");
      const sentAt = requests.findIndex((r) => r.client === "sqs" && /^SendMessage/.test(r.command));
      const edgesAt = requests.findIndex((r) => r.command === "BatchWriteItemCommand" && Object.keys(r.input.RequestItems ?? {}).some((t) => t.includes("Edges")));
      assert.ok(sentAt >= 0 && sentAt < edgesAt, "their messages went before the edges");
      // Their settles found no edge; the batch's own look at the dependent's inputs queues it.
      const top = await buildOf(builder, "early-top");
      await handleAgentFrame(evaluatorId, JSON.stringify({ type: "evaluation-done", taskId: task.taskId, batches: 1, status: "succeeded" }));
      await handleAgentFrame(builderId, succeeded(top));
      assert.equal((await finished(stack, jobId)).status, "succeeded");
    } finally {
      evaluator.close();
      builder.close();
    }
  });

  it("sends the messages of the derivations a batch creates ready ten to a request, and each is on its queue once", async () => {
    const system = "m68k-linux";
    const names = Array.from({ length: 12 }, (_, i) => `sent-${i}`);
    const events = [...names.map((name) => ({ ...derivation(name), system })), ...names.map(attribute)];
    const evaluator = await RawAgent.connect(stack.agentSocketUrl, token);
    const builder = await RawAgent.connect(stack.agentSocketUrl, token);
    try {
      const welcome = await evaluator.request(hello({ hostname: "sent-evaluator", systems: ["x86_64-linux"], systemFeatures: [], concurrentTasks: 1 }));
      const evaluatorId = (welcome as { connectionId: string }).connectionId;
      await push(stack, "acme/sent-together", "5".repeat(40));
      const task = (await eventually(async () => evaluator.messages.find((m) => m.type === "evaluate"), "the evaluation")) as { taskId: string };
      const requests = await recording(() => handleAgentFrame(evaluatorId, JSON.stringify({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })));
      const toBuildQueues = requests.filter((r) => r.client === "sqs" && /build-/.test(String(r.input.QueueUrl ?? "")));
      assert.deepEqual(
        toBuildQueues.filter((r) => /^SendMessage/.test(r.command)).map((r) => `${r.command} ${r.input.Entries?.length ?? 1}`),
        ["SendMessageBatchCommand 10", "SendMessageBatchCommand 2"],
        "twelve messages in two requests",
      );
      // On the queue once each: an agent with a slot for each is given all twelve, and no more.
      assert.equal((await builder.request(hello({ hostname: "sent-builder", systems: [system], systemFeatures: [], concurrentTasks: 13 }))).type, "welcome");
      const built = await eventually(async () => {
        const drvs = builder.messages.flatMap((m) => (m.type === "build" ? [m.drvPath] : []));
        return drvs.length >= 12 ? drvs.sort() : undefined;
      }, "all twelve builds");
      assert.deepEqual(built, names.map(drv).sort());
    } finally {
      evaluator.close();
      builder.close();
    }
  });

  it("looks a new build queue up once however many callers ask for it at once", async () => {
    const key = "pdp11-linux|";
    let urls: string[] = [];
    const registrations = await counting("PutItemCommand", "BuildQueues", async () => {
      urls = await Promise.all([buildQueueUrl(key), buildQueueUrl(key), buildQueueUrl(key)]);
    });
    assert.equal(registrations, 1, "one CreateQueue and one registration, shared by the three");
    assert.equal(new Set(urls).size, 1);
    assert.ok((await stack.scan("BuildQueues")).some((q) => q.queueKey === key));
  });

  it("settles a build in one write of its item: its jobs' copies say it was told, and the sweeper tells again only a settle whose copies do not", async () => {
    const system = "hppa-linux";
    const on = (name: string, inputs: string[] = []) => ({ ...derivation(name, inputs), system });
    const agent = await RawAgent.connect(stack.agentSocketUrl, token);
    try {
      const welcome = await agent.request(hello({ hostname: "diet-settler", systems: [system], systemFeatures: [], concurrentTasks: 1 }));
      const connectionId = (welcome as { connectionId: string }).connectionId;
      const jobId = await push(stack, "acme/diet-settled", "7".repeat(40));
      const task = (await eventually(async () => agent.messages.find((m) => m.type === "evaluate"), "the evaluation")) as { taskId: string };
      const events = [on("told-input"), on("told-dependent", ["told-input"]), attribute("told-dependent")];
      assert.equal((await agent.request({ type: "evaluation-events", taskId: task.taskId, seq: 0, events })).type, "ack");
      await handleAgentFrame(connectionId, JSON.stringify({ type: "evaluation-done", taskId: task.taskId, batches: 1, status: "succeeded" }));
      const first = (await eventually(async () => agent.messages.find((m) => m.type === "build"), "the input's build")) as { taskId: string; drvPath: string };
      assert.equal(first.drvPath, drv("told-input"));
      const result = JSON.stringify({ type: "build-result", taskId: first.taskId, drvPath: first.drvPath, status: "succeeded", outputs: { out: `${first.drvPath}-out` } });
      const writes = await counting("UpdateItemCommand", "-Derivations", () => handleAgentFrame(connectionId, result), undefined, (input) => input.Key?.drvPath === drv("told-input"));
      assert.equal(writes, 1, "the settle alone: no second write to take it out of the sweeper's index");
      await eventually(async () => agent.messages.find((m) => m.type === "build" && m.drvPath === drv("told-dependent")), "its dependent, told");
      const settled = (await stack.getItem("Derivations", { drvPath: drv("told-input") }))!;
      assert.ok(settled.propagateShard, "it stays in the index");
      const row = await stack.getItem("JobDerivations", { jobId, drvPath: drv("told-input") });
      assert.deepEqual([row?.status, row?.version, row?.told], ["succeeded", settled.version, settled.version], "its job's copy says its dependents were told");

      // A look from the index's start reads its copies, and neither reads nor tells it again.
      await stack.put("SweeperCursors", [{ step: "unpropagated-settles", startKey: { through: "2000-01-01T00:00:00.000Z" }, savedAt: new Date().toISOString() }]);
      const reads = await counting("GetItemCommand", "-Derivations", async () => void (await sweep(later(5 * 60_000))), undefined, (input) => input.Key?.drvPath === drv("told-input"));
      assert.equal(reads, 0, "a told settle is left alone");
    } finally {
      agent.close();
    }
  });

  it("tells again a settle whose handler died before its jobs' copies: the dependent is queued, and the copies then say so", async () => {
    const system = "ia64-linux";
    const [input, dependent, jobId] = [drv("untold-input"), drv("untold-dependent"), "job-untold"];
    const at = new Date().toISOString();
    const common = { system, requiredFeatures: [], queueKey: `${system}|`, attempt: 0, createdAt: at, updatedAt: at, jobIds: new Set([jobId]) };
    // As a handler leaves it that died after the settle's write: in the index, its dependent still waiting for it, its job's copy behind.
    await stack.setAttributes("Derivations", { drvPath: input }, { ...common, status: "succeeded", version: 3, outputs: { out: `${input}-out` }, propagateShard: "p" });
    await stack.setAttributes("Derivations", { drvPath: dependent }, { ...common, status: "waiting", version: 0, outputs: { out: `${dependent}-out` }, inputsOnItem: true, inputs: new Set([input]), pendingInputs: new Set([input]) });
    await stack.put("Edges", [{ inputDrv: input, dependentDrv: dependent }]);
    await stack.put("JobDerivations", [
      { jobId, drvPath: input, status: "building", jobStatus: jobStatusKey(jobId, "building"), version: 2 },
      { jobId, drvPath: dependent, status: "waiting", jobStatus: jobStatusKey(jobId, "waiting"), version: 0 },
    ]);
    // The sweeps above, on a clock 5 minutes ahead, looked past this settle's time: as if they had stopped early.
    await stack.put("SweeperCursors", [{ step: "unpropagated-settles", startKey: { through: "2000-01-01T00:00:00.000Z" }, savedAt: at }]);
    const report = await sweep(later(5 * 60_000));
    assert.ok(report.settlesPropagated >= 1);
    assert.equal((await stack.getItem("Derivations", { drvPath: dependent }))?.status, "queued", "its dependent was told");
    const row = await stack.getItem("JobDerivations", { jobId, drvPath: input });
    assert.deepEqual([row?.status, row?.version, row?.told], ["succeeded", 3, 3], "and its job's copy now says so");
  });
});
