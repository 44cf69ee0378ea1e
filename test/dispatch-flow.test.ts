import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { JobView, type EvaluationEvent } from "@nimbus/protocol";
import { runCli } from "./support/agent-process.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";
import { sendSignedPush as sendPush } from "@nimbus/cli";

// Protocol-level agents (no Nix) drive the whole service: webhook → evaluation → dispatch by
// system and features → results → job verdict, through the real local stack.
const drv = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;
const derivation = (name: string, inputs: string[] = [], requiredFeatures: string[] = []): EvaluationEvent => ({
  kind: "derivation",
  drvPath: drv(name),
  system: "x86_64-linux",
  requiredFeatures,
  inputDrvs: inputs.map(drv),
  outputs: { out: `/nix/store/${name}-out` },
});
const attribute = (name: string): EvaluationEvent => ({
  kind: "attribute",
  path: [name],
  drvPath: drv(name),
  attributeType: "regular",
  needsBuild: true,
});

// a → b → c; f fails → g; k needs kvm; m needs gpu (only the mandatory-gpu agent); "broken" does not evaluate.
const EVENTS: EvaluationEvent[] = [
  derivation("a"),
  derivation("b", ["a"]),
  derivation("c", ["b"]),
  derivation("f"),
  derivation("g", ["f"]),
  derivation("k", [], ["kvm"]),
  derivation("m", [], ["gpu"]),
  ...["c", "g", "k", "m"].map(attribute),
  { kind: "attribute-error", path: ["broken"], message: "error: this attribute is broken on purpose" },
];

describe("dispatch: a job from a push webhook through protocol-level agents", () => {
  let stack: TestStack;
  let agents: ScriptedAgent[];
  const script = {
    evaluate: () => EVENTS,
    build: (task: { drvPath: string }) =>
      task.drvPath === drv("f") ? { status: "failed" as const, exitCode: 3, log: ["compiling f", "error: f is wrong"] } : { status: "succeeded" as const },
  };

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("scripted");
    agents = [
      ScriptedAgent.create("plain", { systemFeatures: [], concurrentTasks: 1 }, script),
      ScriptedAgent.create("kvm", { systemFeatures: ["kvm"], concurrentTasks: 1 }, script),
      ScriptedAgent.create("gpu", { systemFeatures: [], mandatoryFeatures: ["gpu"], concurrentTasks: 1 }, script),
    ];
    for (const agent of agents) await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack.cleanup();
  });

  const push = (deliveryId?: string) =>
    sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/widgets", commit: "c0ffee".padEnd(40, "0") }, deliveryId);
  const waitFinished = (jobId: string) =>
    eventually(async () => {
      const job = JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);
      return ["succeeded", "failed", "cancelled"].includes(job.status) ? job : undefined;
    }, `job ${jobId} to finish`, 20_000);
  const builtBy = (name: string) => agents.filter((a) => a.builds.some((b) => b.drvPath === drv(name))).map((a) => a.name);

  it("builds each derivation once on an agent that may build it, and reports the failures", async () => {
    const { status, body } = await push("delivery-1");
    assert.equal(status, 201);
    const job = await waitFinished(body.jobId);

    assert.equal(job.status, "failed");
    assert.equal(job.evaluation.status, "succeeded");
    assert.deepEqual(job.counts, { succeeded: 5, failed: 1, "dependency-failed": 1 });
    assert.deepEqual(job.failures.map((f) => [f.drvPath, f.status]).sort(), [
      [drv("f"), "failed"],
      [drv("g"), "dependency-failed"],
    ]);
    const f = job.failures.find((x) => x.drvPath === drv("f"))!;
    assert.equal(f.exitCode, 3);
    assert.deepEqual(f.logTail, ["compiling f", "error: f is wrong"]);
    assert.equal(job.failures.find((x) => x.drvPath === drv("g"))!.dependency, drv("f"));
    assert.deepEqual(job.attributes.find((a) => a.path[0] === "broken"), {
      path: ["broken"],
      status: "error",
      error: "error: this attribute is broken on purpose",
    });

    // Nix's matching rule: kvm only on the kvm agent, gpu only on the mandatory-gpu agent,
    // which takes nothing else; the failure's dependent never builds.
    assert.deepEqual(builtBy("k"), ["kvm"]);
    assert.deepEqual(builtBy("m"), ["gpu"]);
    for (const name of ["a", "b", "c", "f"]) assert.equal(builtBy(name).length, 1, `${name} built once`);
    assert.deepEqual(agents.find((a) => a.name === "gpu")!.builds.map((b) => b.drvPath), [drv("m")]);
    assert.deepEqual(builtBy("g"), []);
    // Each agent said concurrentTasks = 1: the service never gave one more than one task.
    for (const agent of agents) assert.ok(agent.maxRunning <= 1, `${agent.name} ran ${agent.maxRunning} at once`);

    const log = await stack.api("GET", `/api/derivations/${encodeURIComponent(drv("f"))}/log`);
    assert.equal(log.status, 200);
    assert.deepEqual(log.body.lines, ["compiling f", "error: f is wrong"]);
  });

  it("returns the same job for a redelivered webhook", async () => {
    const jobs = (await stack.api("GET", "/api/jobs")).body.jobs.length;
    const again = await push("delivery-1");
    assert.equal(again.status, 200);
    assert.equal(again.body.redelivery, true);
    assert.equal((await stack.api("GET", "/api/jobs")).body.jobs.length, jobs);
  });

  it("builds nothing when the same commit is pushed again, and keeps the cached failure", async () => {
    const before = agents.reduce((n, a) => n + a.builds.length, 0);
    const { body } = await push("delivery-2");
    const job = await waitFinished(body.jobId);
    assert.equal(job.status, "failed");
    assert.deepEqual(job.counts, { succeeded: 5, failed: 1, "dependency-failed": 1 });
    assert.equal(agents.reduce((n, a) => n + a.builds.length, 0), before, "no build was dispatched");
  });

  it("rebuilds the failure when a rerun asks for it", async () => {
    const { body } = await push("delivery-3");
    await waitFinished(body.jobId);
    const rerun = await stack.api("POST", `/api/jobs/${body.jobId}/rerun?rebuildFailures=true`);
    assert.equal(rerun.status, 201, JSON.stringify(rerun.body));
    const job = await waitFinished(rerun.body.jobId);
    assert.equal(job.status, "failed");
    assert.equal(agents.flatMap((a) => a.builds).filter((b) => b.drvPath === drv("f")).length, 2, "f was built again");
    assert.equal(agents.flatMap((a) => a.builds).filter((b) => b.drvPath === drv("g")).length, 0, "its dependent still never built");
  });
});

describe("cancel and rerun through the API", () => {
  let stack: TestStack;
  let agent: ScriptedAgent;
  const chain: EvaluationEvent[] = [derivation("slow"), derivation("after-slow", ["slow"]), attribute("after-slow")];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("slow");
    // acme/riscv's only derivation is for a system no agent here has.
    const riscv = [{ ...derivation("on-riscv"), system: "riscv64-linux" } as EvaluationEvent, attribute("on-riscv")];
    agent = ScriptedAgent.create("slow", { concurrentTasks: 2 }, {
      evaluate: (task) => (task.repository === "acme/riscv" ? riscv : chain),
      buildMs: 1500,
    });
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent.close();
    await stack.cleanup();
  });

  it("cancels a running job: its build is stopped on the agent and its waiting derivations cancelled", async () => {
    const { body } = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/slow", commit: "5".repeat(40) });
    await eventually(async () => (agent.builds.length > 0 ? true : undefined), "the slow build to start");
    const cancelled = await stack.api("POST", `/api/jobs/${body.jobId}/cancel`);
    assert.equal(cancelled.status, 200);
    assert.deepEqual(cancelled.body, { id: body.jobId, status: "cancelled", complete: true });
    const job = JobView.parse((await stack.api("GET", `/api/jobs/${body.jobId}`)).body);
    assert.equal(job.status, "cancelled");
    assert.deepEqual(job.counts, { cancelled: 2 });
    await eventually(async () => (agent.cancelled.length > 0 ? true : undefined), "the agent to be told");
    // (Its evaluation may still count as running, its last batch on the way: it is stopped too.)
    assert.deepEqual(agent.cancelled.filter((id) => !id.startsWith("eval-")), [agent.builds[0]!.taskId]);
    const again = await stack.api("POST", `/api/jobs/${body.jobId}/cancel`);
    assert.deepEqual([again.status, again.body], [200, { id: body.jobId, status: "cancelled", complete: true }], "cancelling again is harmless");
    assert.deepEqual(agent.builds.map((b) => b.drvPath), [drv("slow")], "the cancelled dependent never built");
    const [session] = await stack.scan("Sessions");
    assert.equal(session?.runningTasks, 0, "the cancelled build's slot is free again");
  });

  it("shows derivations no connected agent can build as waiting for one", async () => {
    const { body } = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/riscv", commit: "9".repeat(40) });
    await eventually(async () => {
      const job = JobView.parse((await stack.api("GET", `/api/jobs/${body.jobId}`)).body);
      return job.counts.queued === 1 ? true : undefined;
    }, "the riscv derivation to be queued");
    const shown = await runCli(["job", body.jobId], { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /waiting for an agent that can build them \(none connected\):\n  1 × riscv64-linux\n/);
  });

  it("answers bad cancel and rerun requests with clear errors and changes nothing", async () => {
    const before = await stack.scan("Jobs");
    const cases: Array<[string, number, RegExp]> = [
      ["/api/jobs/nope/cancel", 404, /no job nope/],
      ["/api/jobs/nope/rerun", 404, /no job nope/],
      [`/api/jobs/${before[0]!.jobId}/rerun?rebuildFailures=maybe`, 400, /rebuildFailures must be true or false/],
    ];
    for (const [path, status, message] of cases) {
      const answer = await stack.api("POST", path);
      assert.equal(answer.status, status, path);
      assert.match(answer.body.error.message, message);
    }
    assert.deepEqual(await stack.scan("Jobs"), before);
  });
});

describe("a derivation whose inputs come in several parts", () => {
  let stack: TestStack;
  let agent: ScriptedAgent;
  // `wide` is split in two parts, a batch apart; p1 builds while part 1 is still on its way.
  const wide = derivation("wide", ["p1", "p2"]);
  const parts: EvaluationEvent[] = [
    derivation("p1"),
    { ...wide, inputDrvs: [drv("p1")], part: { index: 0, count: 2 } } as EvaluationEvent,
    attribute("p1"),
    derivation("p2"),
    { ...wide, inputDrvs: [drv("p2")], part: { index: 1, count: 2 } } as EvaluationEvent,
    attribute("wide"),
  ];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("parts");
    agent = ScriptedAgent.create("parts", { concurrentTasks: 4 }, { evaluate: () => parts, batchDelayMs: 400 });
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    agent.close();
    await stack.cleanup();
  });

  it("is built once, after every part's inputs", async () => {
    const { body } = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/wide", commit: "7".repeat(40) });
    const job = await eventually(async () => {
      const view = JobView.parse((await stack.api("GET", `/api/jobs/${body.jobId}`)).body);
      return view.status === "succeeded" || view.status === "failed" ? view : undefined;
    }, "the job to finish");
    assert.equal(job.status, "succeeded");
    const order = agent.builds.map((b) => b.drvPath);
    assert.deepEqual(order.filter((d) => d === drv("wide")).length, 1);
    assert.ok(order.indexOf(drv("wide")) > order.indexOf(drv("p2")), `wide after p2: ${order.join(" ")}`);
  });
});
