import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import {
  type Condition,
  evaluateCondition,
  grantSecrets,
  loadSecretsJson,
  parseSecretsJson,
  parseSecretsMap,
  SecretRefusedError,
  SecretsConfigError,
  type SecretContext,
} from "../src/secrets-json.ts";

// Hercules' secrets.json and its conditions (docs/effects.md, "Secrets").
const main: SecretContext = { owner: "example", repo: "app", ref: "refs/heads/main", isDefaultBranch: true };
const staging: SecretContext = { ...main, ref: "refs/heads/staging", isDefaultBranch: false };
const feature: SecretContext = { ...main, ref: "refs/heads/feature", isDefaultBranch: false };
const tag: SecretContext = { ...main, ref: "refs/tags/v1.0", isDefaultBranch: false };

// The example of Hercules' documentation: example/infra's default branch, example/app's staging and dev.
const HERCULES_EXAMPLE: Condition = {
  or: [
    { and: [{ isOwner: "example" }, { isRepo: "infra" }, "isDefaultBranch"] },
    { and: [{ isOwner: "example" }, { isRepo: "app" }, { or: [{ isBranch: "staging" }, { isBranch: "dev" }] }] },
  ],
};

/** The error `fn` throws, checked to be of `kind`. */
function caught(fn: () => unknown, kind: new (...args: never[]) => Error): Error {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof kind, String(error));
    return error;
  }
  assert.fail("it did not throw");
}

const FILE = JSON.stringify({
  deploy: { kind: "Secret", data: { token: "s3cr3t-deploy" }, condition: { and: [{ isOwner: "example" }, "isDefaultBranch"] } },
  staging: { kind: "Secret", data: { key: "s3cr3t-staging" }, condition: HERCULES_EXAMPLE },
  loose: { kind: "Secret", data: { x: 1 } },
  releases: { kind: "Secret", data: { y: 2 }, condition: "isTag" },
});

describe("secrets.json", () => {
  it("reads Hercules' format", () => {
    const secrets = parseSecretsJson(FILE);
    assert.deepEqual([...secrets.keys()], ["deploy", "staging", "loose", "releases"]);
    assert.deepEqual(secrets.get("deploy"), { data: { token: "s3cr3t-deploy" }, condition: { and: [{ isOwner: "example" }, "isDefaultBranch"] } });
    assert.equal(secrets.get("loose")?.condition, undefined);
  });

  it("refuses bad input with every problem at once, naming the secret and the key", () => {
    const bad = JSON.stringify({
      "bad name!": { kind: "Secret", data: {} },
      wrongKind: { kind: "Token", data: {} },
      noData: { kind: "Secret", data: "x" },
      extra: { kind: "Secret", data: {}, conditon: true },
      notObject: [1],
      strangeString: { kind: "Secret", data: {}, condition: "isMain" },
      twoKeys: { kind: "Secret", data: {}, condition: { isOwner: "a", isRepo: "b" } },
      negation: { kind: "Secret", data: {}, condition: { not: "isTag" } },
      andNotList: { kind: "Secret", data: {}, condition: { and: "isTag" } },
      deepBad: { kind: "Secret", data: {}, condition: { or: [true, { and: [{ isBranch: 3 }] }] } },
    });
    const error = caught(() => parseSecretsJson(bad, "s.json"), SecretsConfigError);
    const lines = error.message.split("\n");
    const expected = [
      /^s\.json: secret "bad name!": a secret name must be/,
      /^s\.json: secret "wrongKind": "kind" must be "Secret"/,
      /^s\.json: secret "noData": "data" must be a JSON object/,
      /^s\.json: secret "extra": "conditon" is not a key of a secret/,
      /^s\.json: secret "notObject": must be an object/,
      /^s\.json: secret "strangeString": "condition": unknown condition "isMain"/,
      /^s\.json: secret "twoKeys": "condition": a condition object has exactly one key/,
      /^s\.json: secret "negation": "condition": unknown condition "not" .*there is no "not"/,
      /^s\.json: secret "andNotList": "condition\.and": must be a list of conditions/,
      /^s\.json: secret "deepBad": "condition\.or\[1\]\.and\[0\]\.isBranch": must be a non-empty string/,
    ];
    assert.equal(lines.length, expected.length, error.message);
    for (const [i, pattern] of expected.entries()) assert.match(lines[i]!, pattern);
    assert.throws(() => parseSecretsJson("{", "s.json"), /^SecretsConfigError: s\.json: invalid JSON/);
    assert.throws(() => parseSecretsJson("[]", "s.json"), /must be a JSON object from secret names/);
  });
});

describe("conditions", () => {
  const cases: Array<[string, Condition, SecretContext, boolean]> = [
    ["true", true, feature, true],
    ["false", false, main, false],
    ["isDefaultBranch on main", "isDefaultBranch", main, true],
    ["isDefaultBranch on a feature branch", "isDefaultBranch", feature, false],
    ["isTag on a tag", "isTag", tag, true],
    ["isTag on a branch", "isTag", main, false],
    ["isBranch", { isBranch: "staging" }, staging, true],
    ["isBranch is exact", { isBranch: "stag" }, staging, false],
    ["isRepo", { isRepo: "app" }, main, true],
    ["isOwner of another", { isOwner: "other" }, main, false],
    ["empty and", { and: [] }, main, true],
    ["empty or", { or: [] }, main, false],
    ["Hercules' example: app on staging", HERCULES_EXAMPLE, staging, true],
    ["Hercules' example: app on main", HERCULES_EXAMPLE, main, false],
    ["Hercules' example: infra on main", HERCULES_EXAMPLE, { ...main, repo: "infra" }, true],
  ];
  for (const [name, condition, context, expected] of cases) {
    it(name, () => assert.equal(evaluateCondition(condition, context).holds, expected));
  }

  it("says why a condition does not hold", () => {
    const { why } = evaluateCondition({ and: [{ isOwner: "example" }, "isDefaultBranch"] }, feature);
    assert.deepEqual(why, ['isDefaultBranch: ref "refs/heads/feature" is not the default branch']);
    assert.deepEqual(evaluateCondition(true, feature).why, []);
  });
});

describe("granting secrets to an effect", () => {
  const secrets = parseSecretsJson(FILE);

  it("gives exactly the secrets asked for, under the names asked by", () => {
    const granted = grantSecrets(parseSecretsMap(JSON.stringify({ aws: "deploy" })), secrets, main);
    assert.deepEqual(granted, { aws: { kind: "Secret", data: { token: "s3cr3t-deploy" } } });
    assert.deepEqual(grantSecrets(parseSecretsMap(undefined), secrets, main), {}, "asking for nothing gets nothing");
  });

  it("refuses a secret whose condition does not hold, naming the secret and the condition, never its data", () => {
    const { message } = caught(() => grantSecrets(new Map([["aws", "deploy"]]), secrets, feature), SecretRefusedError);
    assert.equal(
      message,
      'secret "deploy" is refused for example/app at refs/heads/feature: its condition {"and":[{"isOwner":"example"},"isDefaultBranch"]} does not hold (isDefaultBranch: ref "refs/heads/feature" is not the default branch)',
    );
    assert.ok(!message.includes("s3cr3t"));
  });

  it("refuses the whole grant when one secret is refused", () => {
    assert.throws(() => grantSecrets(new Map([["ok", "staging"], ["no", "releases"]]), secrets, staging), /secret "releases" is refused .* "isTag" does not hold/);
  });

  it("refuses secrets that are missing, have no condition, or when there is no secrets.json", () => {
    assert.throws(() => grantSecrets(new Map([["x", "nope"]]), secrets, main), /secret "nope", which is not in this agent's secrets\.json/);
    assert.throws(() => grantSecrets(new Map([["x", "loose"]]), secrets, main), /secret "loose" has no "condition"/);
    assert.throws(() => grantSecrets(new Map([["x", "deploy"]]), undefined, main), /this agent has no secrets\.json/);
  });

  it("reads an effect's secretsMap, refusing what it cannot give", () => {
    assert.deepEqual([...parseSecretsMap('{"a":"deploy","b":"staging"}')], [["a", "deploy"], ["b", "staging"]]);
    assert.throws(() => parseSecretsMap("{nope"), /secretsMap is not JSON/);
    assert.throws(() => parseSecretsMap('["deploy"]'), /must be an object/);
    assert.throws(() => parseSecretsMap('{"git":{"type":"GitToken"}}'), /GitToken, which Nimbus does not give effects/);
    assert.throws(() => parseSecretsMap('{"a":3}'), /secretsMap\.a must be the name of a secret/);
  });
});

describe("loading secrets.json", () => {
  it("refuses a file others can read, and a missing one, saying what to do", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "nimbus-secrets-"));
    try {
      const file = path.join(dir, "secrets.json");
      await writeFile(file, FILE, { mode: 0o644 });
      await chmod(file, 0o644);
      await assert.rejects(loadSecretsJson(file), /readable by other users \(mode 0644\).*chmod 600/);
      await chmod(file, 0o600);
      assert.equal((await loadSecretsJson(file)).size, 4);
      await assert.rejects(loadSecretsJson(path.join(dir, "none.json")), /no such file \(secretsJsonPath in agent\.toml points here/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
