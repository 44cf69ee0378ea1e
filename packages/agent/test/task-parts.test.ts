import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AGENT_MESSAGE_TYPES, AgentMessage, SERVICE_MESSAGE_TYPES, ServiceMessage } from "@nimbus/protocol";
import { classifyFailure } from "../src/tasks/build.ts";
import { redactCredentials } from "../src/git-checkout.ts";
import { jsonBytes, splitBySize, truncateText } from "../src/message-size.ts";
import { type DerivationInfo, parseWillBeBuilt, topologicalOrder } from "../src/nix-closure.ts";
import { nixErrorMessage } from "../src/nix-options.ts";
import { chunkArguments } from "../src/process.ts";
import { kindOf } from "../src/tasks/registry.ts";
import { directoryName, type TaskContext, type TaskMessage } from "../src/tasks/task-kind.ts";

const drv = (name: string) => `/nix/store/${name.padEnd(32, "0")}-${name}.drv`;

describe("parseWillBeBuilt", () => {
  it("reads Nix 2.8's dry-run output, ignoring what would be fetched", () => {
    const stderr = [
      "these 2 derivations will be built:",
      `  ${drv("a")}`,
      `  ${drv("b")}`,
      "these 2 paths will be fetched (0.05 MiB download, 0.20 MiB unpacked):",
      "  /nix/store/cccccccccccccccccccccccccccccccc-c",
      "  /nix/store/dddddddddddddddddddddddddddddddd-d",
      "this derivation will be built:",
      `  ${drv("e")}`,
      "warning: something",
      "",
    ].join("\n");
    assert.deepEqual(parseWillBeBuilt(stderr), [drv("a"), drv("b"), drv("e")]);
    assert.deepEqual(parseWillBeBuilt(""), []);
  });
});

describe("topologicalOrder", () => {
  const info = (name: string, inputs: string[]): [string, DerivationInfo] => [
    drv(name),
    { drvPath: drv(name), system: "x86_64-linux", requiredFeatures: [], inputDrvs: inputs.map(drv), inputOutputs: {}, outputs: {} },
  ];

  it("puts inputs first, following the roots' order", () => {
    const infos = new Map([info("c", ["b"]), info("b", ["a"]), info("a", []), info("z", ["a"]), info("lone", [])]);
    assert.deepEqual(topologicalOrder([drv("z"), drv("c")], infos), [drv("a"), drv("z"), drv("b"), drv("c"), drv("lone")]);
  });

  it("handles a chain of 100,000 without recursion", () => {
    const infos = new Map(Array.from({ length: 100_000 }, (_, i) => info(`n${i}`, i === 0 ? [] : [`n${i - 1}`])));
    const order = topologicalOrder([drv("n99999")], infos);
    assert.equal(order.length, 100_000);
    assert.equal(order[0], drv("n0"));
    assert.equal(order.at(-1), drv("n99999"));
  });
});

describe("message sizes", () => {
  it("cuts text by characters and by JSON bytes, marking the cut", () => {
    assert.equal(truncateText("short", 10), "short");
    assert.equal(truncateText("abcdefghij", 5), "abcd…");
    assert.equal(truncateText("abcdefghij", 5, 1000, "end"), "…ghij");
    const controls = "\u0001".repeat(5000);
    const cut = truncateText(controls, 8000, 1000);
    assert.ok(jsonBytes(cut) <= 1000 && cut.endsWith("…"), `${jsonBytes(cut)} bytes`);
    assert.equal(truncateText("😀😀😀", 3), "😀…", "never half a surrogate pair");
  });

  it("splits by count and by size", () => {
    const items = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];
    const sizes = items.map(jsonBytes);
    assert.deepEqual(splitBySize(items, sizes, 0, 2, 1000), [["aaaa", "bbbb"], ["cccc", "dddd"], ["eeee"]]);
    assert.deepEqual(splitBySize(items, sizes, 10, 100, 24), [["aaaa", "bbbb"], ["cccc", "dddd"], ["eeee"]]);
    assert.throws(() => splitBySize(["x".repeat(100)], [102], 0, 10, 50));
  });

  it("chunks arguments below the byte budget", () => {
    const paths = Array.from({ length: 10_000 }, (_, i) => drv(`p${i}`));
    const chunks = chunkArguments(paths, 64 * 1024, 1000);
    assert.deepEqual(chunks.flat(), paths);
    for (const chunk of chunks) assert.ok(chunk.reduce((n, p) => n + p.length + 9, 0) <= 64 * 1024 && chunk.length <= 1000);
  });
});

describe("classifyFailure", () => {
  const self = drv("self");
  it("is failed when this derivation's builder failed, with the builder's exit code", () => {
    const stderr = `building '${self}'...\nerror: builder for '${self}' failed with exit code 3\n`;
    assert.deepEqual(classifyFailure(self, 100, null, stderr), { status: "failed", exitCode: 3, error: `error: builder for '${self}' failed with exit code 3` });
  });
  it("is exceptional when an input failed, Nix refused, or Nix was killed", () => {
    const input = drv("input");
    assert.equal(classifyFailure(self, 100, null, `error: builder for '${input}' failed with exit code 1\nerror: 1 dependencies of derivation '${self}' failed to build`).status, "exceptional");
    const refused = `error: a 'x86_64-linux' with features {kvm} is required to build '${self}', but I am a 'x86_64-linux' with features {}`;
    assert.deepEqual(classifyFailure(self, 1, null, refused), { status: "exceptional", exitCode: 1, error: refused });
    assert.equal(classifyFailure(self, null, "SIGKILL", "").status, "exceptional");
  });
  it("is failed on Nix's other build-failure statuses (timeouts, hash mismatches)", () => {
    assert.equal(classifyFailure(self, 101, null, `error: builder for '${self}' timed out after 1 seconds`).status, "failed");
    assert.equal(classifyFailure(self, 102, null, "error: hash mismatch in fixed-output derivation").exitCode, 102);
  });
});

describe("small helpers", () => {
  it("keeps Nix's error block without the --show-trace hint", () => {
    const stderr = "trace: noise\n\u001b[31;1merror:\u001b[0m boom\n\n       at /repo/ci.nix:1:2:\n(use '--show-trace' to show detailed location information)\n";
    assert.equal(nixErrorMessage(stderr, [["/repo/", ""]]), "error: boom\n\n       at ci.nix:1:2:");
  });
  it("masks credentials in URLs", () => {
    assert.equal(redactCredentials("fatal: https://x-access-token:ghs_123@github.com/o/r.git not found"), "fatal: https://***@github.com/o/r.git not found");
  });
  it("never names the parent directory", () => {
    assert.equal(directoryName(".."), "_..");
    assert.equal(directoryName("task-1.a"), "task-1.a");
  });
});

describe("task kinds", () => {
  const examples: TaskMessage[] = [
    { type: "evaluate", taskId: "t-eval", jobId: "j1", repository: "acme/app", cloneUrl: "https://example.com/acme/app.git", commit: "a".repeat(40) },
    { type: "build", taskId: "t-build", drvPath: drv("x"), system: "x86_64-linux", requiredFeatures: [] },
  ];

  it("every task message of the protocol has a kind, and the examples cover them all", () => {
    const control = new Set(["welcome", "heartbeat-ack", "error", "cancel", "ack", "result-ack", "cache-upload-urls", "cache-upload-result"]);
    const taskTypes = SERVICE_MESSAGE_TYPES.filter((type) => !control.has(type)).sort();
    assert.deepEqual(examples.map((task) => task.type).sort(), taskTypes);
    for (const task of examples) {
      ServiceMessage.parse(task);
      assert.equal(kindOf(task).type, task.type);
      assert.ok(AGENT_MESSAGE_TYPES.includes(kindOf(task).resultType), `${task.type}: result ${kindOf(task).resultType}`);
    }
  });

  it("an internal error becomes a valid result message of the kind's result type", () => {
    const context = { acked: { sent: 3 } } as unknown as TaskContext;
    for (const task of examples) {
      const { result, outcome } = kindOf(task).internalError(task, `internal error in the agent: ${"x".repeat(9000)}`, context);
      AgentMessage.parse(result);
      assert.equal(result.type, kindOf(task).resultType);
      assert.equal(result.taskId, task.taskId);
      assert.notEqual(outcome.status, "succeeded");
      assert.ok(((result as { error?: string }).error ?? "").length <= 8000);
    }
  });
});
