import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Message } from "@aws-sdk/client-sqs";
import { SessionItem } from "../src/flow/sessions.ts";
import { SessionTask, TASK_KINDS } from "../src/flow/tasks/registry.ts";
import { BuildMessage, EvaluationMessage, MalformedMessageError, parseMessageBody } from "../src/storage/queue-messages.ts";
import { StoredItemError } from "../src/storage/table.ts";
import { Derivations, Jobs, JobDerivations } from "../src/storage/tables.ts";

const derivation = {
  drvPath: "/nix/store/00000000000000000000000000000000-a.drv",
  system: "x86_64-linux",
  requiredFeatures: [],
  outputs: { out: "/nix/store/00000000000000000000000000000000-a" },
  status: "waiting",
  queueKey: "x86_64-linux|",
  attempt: 0,
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
};

describe("stored items are parsed where they are read", () => {
  it("takes a well-formed item, string sets as Sets whether stored as a set or a list", () => {
    const fromSet = Derivations.parse({ ...derivation, pendingParts: new Set(["#part/1"]) });
    const fromList = Derivations.parse({ ...derivation, pendingParts: ["#part/1"] });
    assert.deepEqual(fromSet.pendingParts, new Set(["#part/1"]));
    assert.deepEqual(fromList.pendingParts, new Set(["#part/1"]));
  });

  const malformed: Array<[string, () => unknown, RegExp]> = [
    ["an unknown status", () => Derivations.parse({ ...derivation, status: "exploded" }), /^Derivations item \{"drvPath":"\/nix\/store\/0+-a\.drv"\} is malformed: status: /],
    ["a missing attribute", () => Derivations.parse({ ...derivation, attempt: undefined }), /Derivations item .* is malformed: attempt: /],
    ["a wrong shard letter", () => Jobs.parse({ jobId: "j1", listKey: "jobs" }), /^Jobs item \{"jobId":"j1"\} is malformed: .*listKey/],
    ["both key attributes are named", () => JobDerivations.parse({ jobId: "j1", drvPath: "/nix/store/x.drv", status: "nope", jobStatus: "j1#nope" }), /^JobDerivations item \{"jobId":"j1","drvPath":"\/nix\/store\/x\.drv"\} is malformed: status/],
    ["not an object at all", () => Derivations.parse("hello"), /^Derivations item \{\} is malformed/],
  ];
  for (const [name, read, message] of malformed) {
    it(`refuses ${name}, naming table and key`, () => {
      assert.throws(read, (error: unknown) => error instanceof StoredItemError && message.test(error.message));
    });
  }
});

describe("queue message bodies are parsed where they are received", () => {
  const message = (Body: string): Message => ({ MessageId: "m-1", Body });
  it("reads a well-formed body", () => {
    assert.deepEqual(parseMessageBody("Evaluations", message('{"jobId":"j1"}'), EvaluationMessage), { jobId: "j1" });
    assert.deepEqual(parseMessageBody("a build queue", message('{"drvPath":"/nix/store/a.drv","attempt":2}'), BuildMessage), {
      drvPath: "/nix/store/a.drv",
      attempt: 2,
    });
  });
  const bad: Array<[string, string, RegExp]> = [
    ["not JSON", "{", /message m-1 on Evaluations is malformed: the body is not JSON/],
    ["a missing field", "{}", /message m-1 on Evaluations is malformed: jobId: /],
    ["an extra field", '{"jobId":"j1","admin":true}', /message m-1 on Evaluations is malformed: .*admin/],
  ];
  for (const [name, body, expected] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => parseMessageBody("Evaluations", message(body), EvaluationMessage),
        (error: unknown) => error instanceof MalformedMessageError && expected.test(error.message),
      );
    });
  }
});

describe("a build message's start", () => {
  const message = (body: unknown): Message => ({ MessageId: "m-2", Body: JSON.stringify(body) });
  const start = { system: "x86_64-linux", requiredFeatures: ["kvm"], needs: [["cache:shared", "store:b/aaaaaaaaaaaa"]], inputs: ["/nix/store/x-out"], inputCaches: ["shared"] };
  it("is read with the derivation and its attempt", () => {
    assert.deepEqual(parseMessageBody("a build queue", message({ drvPath: "/nix/store/a.drv", attempt: 1, start }), BuildMessage), { drvPath: "/nix/store/a.drv", attempt: 1, start });
  });
  const hostile: Array<[string, unknown, RegExp]> = [
    ["an extra field", { ...start, lease: "mine" }, /start: .*lease/],
    ["a system that is not one", { ...start, system: "x86_64-linux; rm -rf" }, /start\.system/],
    ["an empty need (met by anyone)", { ...start, needs: [[]] }, /start\.needs\.0/],
    ["too many needs", { ...start, needs: Array.from({ length: 1025 }, () => ["cache:c"]) }, /start\.needs/],
    ["an input that is not a store path", { ...start, inputs: ["relative/path"] }, /start\.inputs\.0/],
  ];
  for (const [name, bad, expected] of hostile) {
    it(`refuses ${name}: the message is dropped with the reason, nothing started`, () => {
      assert.throws(
        () => parseMessageBody("a build queue", message({ drvPath: "/nix/store/a.drv", attempt: 1, start: bad }), BuildMessage),
        (error: unknown) => error instanceof MalformedMessageError && expected.test(error.message),
      );
    });
  }
});

describe("the session's task records come from the task kinds", () => {
  it("has one record shape per registered kind", () => {
    assert.deepEqual(SessionTask.options.map((o) => o.shape.kind.value), TASK_KINDS.map((k) => k.kind));
  });
  it("parses each kind's record, and refuses a kind no declaration knows", () => {
    const session = {
      sessionId: "s1",
      secretHash: "h",
      tokenId: "t",
      shard: "s",
      agent: {
        hostname: "h",
        agentVersion: "1",
        nixVersion: "2.8",
        systems: ["x86_64-linux"],
        systemFeatures: [],
        mandatoryFeatures: [],
        substituters: [],
        pushCaches: [],
        concurrentTasks: 1,
        labels: {},
      },
      runningTasks: 2,
      createdAt: "2026-01-01T00:00:00.000Z",
      lastSeen: "2026-01-01T00:00:00.000Z",
      tasks: {
        "eval-j1": { kind: "evaluate", jobId: "j1", startedAt: "2026-01-01T00:00:00.000Z" },
        "b-1-0": { kind: "build", drvPath: "/nix/store/a.drv", attempt: 0, startedAt: "2026-01-01T00:00:00.000Z" },
      },
    };
    assert.equal(Object.keys(SessionItem.parse(session).tasks).length, 2);
    const odd = { ...session, tasks: { x: { kind: "effect", startedAt: "2026-01-01T00:00:00.000Z" } } };
    assert.throws(() => SessionItem.parse(odd));
  });
});
