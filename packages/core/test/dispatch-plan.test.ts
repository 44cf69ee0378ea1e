import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  afterStart,
  MAX_SKIPPED,
  mayStart,
  nextQueue,
  planDispatch,
  planWake,
  receiveCount,
  startDispatch,
  type DispatchState,
  type QueueSource,
  type SessionLoad,
  type StartOutcome,
} from "../src/dispatch-plan.ts";

const agent = (systems: string[], systemFeatures: string[] = [], mandatoryFeatures: string[] = [], concurrentTasks = 4) => ({
  systems,
  systemFeatures,
  mandatoryFeatures,
  concurrentTasks,
});
const session = (id: string, over: Partial<SessionLoad> = {}): SessionLoad => ({
  sessionId: id,
  connectionId: `c-${id}`,
  runningTasks: 0,
  agent: agent(["x86_64-linux"]),
  ...over,
});

const evaluations: QueueSource = { kind: "evaluate", queue: "Evaluations", rank: 0 };
const build = (system: string, features: string[] = []): QueueSource => ({
  kind: "build",
  queue: `${system}|${features.join(",")}`,
  rank: 1,
  requires: { system, requiredFeatures: features },
});

/** A "random" source that walks a fixed list, so shuffles are reproducible. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe("planDispatch: which queues, in which order", () => {
  const linux = build("x86_64-linux");
  const kvm = build("x86_64-linux", ["kvm"]);
  const darwin = build("x86_64-darwin");
  const gpu = build("x86_64-linux", ["gpu"]);
  const cases: Array<[string, SessionLoad, QueueSource[], string[]]> = [
    ["evaluations first, then the build queues it may serve", session("a"), [linux, darwin, evaluations], ["Evaluations", linux.queue]],
    ["a feature it has", session("a", { agent: agent(["x86_64-linux"], ["kvm"]) }), [kvm, darwin], [kvm.queue]],
    ["not a feature it lacks", session("a"), [kvm, gpu], []],
    ["a mandatory-feature agent takes only queues requiring it", session("g", { agent: agent(["x86_64-linux"], [], ["gpu"]) }), [linux, gpu, evaluations], ["Evaluations", gpu.queue]],
    ["nothing for a full session", session("a", { runningTasks: 4 }), [evaluations, linux], []],
    ["nothing for a draining session", session("a", { draining: true }), [evaluations, linux], []],
    ["nothing for a session whose agent is away", session("a", { connectionId: undefined }), [evaluations, linux], []],
  ];
  for (const [name, s, sources, expected] of cases) {
    it(name, () => assert.deepEqual(planDispatch(s, sources, () => 0).map((q) => q.queue), expected));
  }

  it("shuffles queues of one rank, never across ranks", () => {
    const a = build("x86_64-linux", ["a"]);
    const b = build("x86_64-linux", ["b"]);
    const c = build("x86_64-linux", ["c"]);
    const s = session("s", { agent: agent(["x86_64-linux"], ["a", "b", "c"]) });
    const orders = new Set<string>();
    for (const r of [0, 0.34, 0.5, 0.67, 0.99]) {
      const plan = planDispatch(s, [a, b, evaluations, c], sequence(r, 1 - r)).map((q) => q.queue);
      assert.equal(plan[0], "Evaluations");
      assert.deepEqual(plan.slice(1).sort(), [a.queue, b.queue, c.queue].sort());
      orders.add(plan.join(" "));
    }
    assert.ok(orders.size > 1, "different random draws give different orders");
  });
});

describe("dispatch steps: how many to receive, and what becomes of each message", () => {
  it("receives at most 10, and no more than the free slots", () => {
    assert.equal(receiveCount(startDispatch(session("a", { agent: agent(["x"], [], [], 32) }))), 10);
    assert.equal(receiveCount(startDispatch(session("a", { runningTasks: 1 }))), 3);
    assert.equal(receiveCount(startDispatch(session("a", { runningTasks: 4 }))), 0);
    assert.equal(receiveCount({ free: 3, given: 0, stop: true, skipped: 0 }), 0);
  });

  it("stops receiving from a queue after leaving MAX_SKIPPED messages for other agents, and starts afresh on the next", () => {
    const skipping: DispatchState = { free: 3, given: 0, stop: false, skipped: MAX_SKIPPED - 1 };
    assert.equal(receiveCount(skipping), 3);
    const after = afterStart(skipping, "elsewhere").state;
    assert.equal(receiveCount(after), 0, "done with this queue");
    assert.equal(receiveCount(nextQueue(after)), 3, "the next queue is received from");
  });

  const start: DispatchState = { free: 2, given: 0, stop: false, skipped: 0 };
  const cases: Array<[StartOutcome, "delete" | "put-back" | "put-back-later", DispatchState]> = [
    ["sent", "delete", { free: 1, given: 1, stop: false, skipped: 0 }],
    ["stale", "delete", { free: 2, given: 0, stop: false, skipped: 0 }],
    // Leased to the session all the same: it is re-sent when the agent reconnects.
    ["undelivered", "delete", { free: 1, given: 1, stop: true, skipped: 0 }],
    ["full", "put-back", { free: 2, given: 0, stop: true, skipped: 0 }],
    // Another agent can obtain its inputs: back in its queue once this agent is done with it.
    ["elsewhere", "put-back-later", { free: 2, given: 0, stop: false, skipped: 1 }],
    // Nobody can: it stays queued, out of the queue's way, until the sweeper sends it again.
    ["nowhere", "delete", { free: 2, given: 0, stop: false, skipped: 0 }],
  ];
  for (const [outcome, message, state] of cases) {
    it(`${outcome}: ${message}`, () => assert.deepEqual(afterStart(start, outcome), { message, state }));
  }

  it("tries no further message once stopped or out of slots", () => {
    assert.equal(mayStart({ free: 1, given: 0, stop: false, skipped: 0 }), true);
    assert.equal(mayStart({ free: 0, given: 2, stop: false, skipped: 0 }), false);
    assert.equal(mayStart({ free: 1, given: 0, stop: true, skipped: 0 }), false);
  });
});

describe("planWake: which idle agents hear of new work", () => {
  const linux = session("linux", { runningTasks: 2 });
  const idleLinux = session("idle-linux");
  const darwin = session("darwin", { agent: agent(["x86_64-darwin"]) });
  const full = session("full", { runningTasks: 4 });
  const away = session("away", { connectionId: undefined });
  const draining = session("draining", { draining: true });
  const all = [linux, idleLinux, darwin, full, away, draining];
  const cases: Array<[string, { queueKeys: string[]; evaluations: boolean }, string[]]> = [
    ["no new work wakes nobody", { queueKeys: [], evaluations: false }, []],
    ["a build queue wakes the agents that may build it, least busy first", { queueKeys: ["x86_64-linux|"], evaluations: false }, ["idle-linux", "linux"]],
    ["another system's queue wakes only its agents", { queueKeys: ["x86_64-darwin|"], evaluations: false }, ["darwin"]],
    ["an evaluation wakes any agent with a free slot", { queueKeys: [], evaluations: true }, ["idle-linux", "darwin", "linux"]],
    ["a queue nobody may build wakes nobody", { queueKeys: ["aarch64-linux|kvm"], evaluations: false }, []],
  ];
  for (const [name, work, expected] of cases) {
    it(name, () =>
      assert.deepEqual(
        planWake(all, { queueKeys: new Set(work.queueKeys), evaluations: work.evaluations }).map((s) => s.sessionId),
        expected,
      ),
    );
  }

  it("wakes at most the limit", () => {
    const many = Array.from({ length: 40 }, (_, i) => session(`s${i}`));
    assert.equal(planWake(many, { queueKeys: new Set(), evaluations: true }).length, 16);
    assert.equal(planWake(many, { queueKeys: new Set(), evaluations: true }, 3).length, 3);
  });
});
