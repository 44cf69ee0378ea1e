import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PhaseTimings } from "../packages/agent/src/task-timings.ts";
import { procCpuMs } from "../bench/cpu-meter.ts";
import { describeBreakdown, realNixBreakdown } from "../bench/real-nix-breakdown.ts";

describe("PhaseTimings", () => {
  it("adds the time since the last mark to the phase that ended, and prints whole milliseconds in order", () => {
    let now = 1000;
    const timings = new PhaseTimings({ now: () => now });
    now += 10.4;
    timings.mark("inputs");
    now += 200;
    timings.mark("build");
    now += 5;
    timings.mark("inputs");
    assert.equal(timings.line("b-1"), 'task b-1: timings {"inputs":15,"build":200}');
  });
});

describe("realNixBreakdown", () => {
  const at = (ms: number) => new Date(Date.UTC(2026, 10, 30, 3, 0, 0) + ms).toISOString();
  const webhookAt = Date.UTC(2026, 10, 30, 3, 0, 0);
  const agent0 = [
    `${at(100)} info task eval-j1: evaluating acme/repo at abc`,
    `${at(900)} debug task eval-j1: timings {"walk":300,"pushDerivations":400}`,
    `${at(1000)} info task eval-j1: succeeded in 0.9 s`,
    `${at(1200)} info task b-1: building /nix/store/x-1.drv`,
    `${at(1500)} debug task b-1: slot free while pushing its outputs`,
    `${at(1600)} info task b-2: building /nix/store/x-2.drv`,
    `${at(1700)} debug task b-1: timings {"inputs":10,"build":280,"outputs":10,"push":400}`,
    `${at(1700)} info task b-1: succeeded in 0.5 s`,
    `${at(1750)} debug task b-1: result acknowledged`,
    `${at(1900)} debug task b-2: timings {"inputs":10,"build":200,"outputs":0,"push":90}`,
    `${at(1900)} info task b-2: succeeded in 0.3 s`,
    `${at(1950)} debug task b-2: result acknowledged`,
    "a line that is not the agent's log",
  ].join("\n");

  it("reads the evaluation's phases, each build's, and the gaps between them from the agents' logs", () => {
    const b = realNixBreakdown({
      logs: [agent0],
      webhookAt,
      verdictAt: webhookAt + 2000,
      builds: 2,
      handlerMs: [{ source: "socket/default: build-result", totalMs: 300 }],
      requests: [{ source: "socket/default: build-result", total: 20 }],
      mainThreadBusy: 0.5,
      cpuMs: { mainThread: 300, process: 450, agents: 101, agentChildren: 500 },
    });
    assert.equal(b.webhookToEvaluationMs, 100);
    assert.deepEqual(b.evaluation, { phasesMs: { walk: 300, pushDerivations: 400 }, totalMs: 900 });
    assert.equal(b.evaluationToFirstBuildMs, 200);
    assert.equal(b.webhookToFirstBuildMs, 1200);
    assert.deepEqual(b.buildPhasesMs, { inputs: 10, build: 240, outputs: 5, push: 245 });
    assert.equal(b.buildTaskMs.max, 500);
    assert.equal(b.resultToAckMs.p50, 50);
    assert.deepEqual(b.slotFreeToNextBuildMs.max, 100, "from b-1's build-pushing to b-2's arrival");
    assert.equal(b.lastResultToVerdictMs, 100);
    assert.equal(b.nixShareOfSlots, 0.71, "(290 + 210) ms of Nix in the 700 ms from the first build to the last result, one slot");
    assert.deepEqual(b.handlerMsPerBuild, { "socket/default: build-result": 150 });
    assert.deepEqual(b.requestsPerBuildBySource, { "socket/default: build-result": 10 });
    assert.deepEqual(b.cpuMsPerBuild, { mainThread: 150, process: 225, agents: 50.5, nix: 250 });
    assert.match(describeBreakdown(b).at(-1)!, /^CPU ms per build: service main thread 150, service process 225, agents 50.5, Nix 250$/);
  });

  it("leaves the CPU out when it was not measured", () => {
    const b = realNixBreakdown({ logs: [agent0], webhookAt, verdictAt: webhookAt + 2000, builds: 2, handlerMs: [], requests: [], mainThreadBusy: 0.5 });
    assert.equal(b.cpuMsPerBuild, undefined);
    assert.ok(!describeBreakdown(b).some((line) => line.startsWith("CPU")));
  });
});

describe("procCpuMs", () => {
  it("reads a live process's CPU from /proc, and nothing for a process that is not there", () => {
    // Loading the test runner and tsx alone takes well over 10 ms of CPU.
    const own = procCpuMs(process.pid);
    assert.ok(own && own.self >= 10 && own.children >= 0, `this process's CPU: ${JSON.stringify(own)}`);
    assert.equal(procCpuMs(2 ** 30), undefined);
  });
});
