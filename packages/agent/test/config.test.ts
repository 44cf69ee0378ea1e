import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { AgentConfigError, loadAgentConfig, parseAgentConfig, readClusterJoinToken } from "../src/index.ts";

const MINIMAL = `apiBaseUrl = "http://127.0.0.1:4800"\nclusterJoinTokenPath = "token.key"\n`;

/** The error parseAgentConfig throws for `text`, asserted to be an AgentConfigError. */
function problemsOf(text: string): string[] {
  try {
    parseAgentConfig(text, "/etc/nimbus");
  } catch (err) {
    assert.ok(err instanceof AgentConfigError, `expected AgentConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail("expected the configuration to be rejected");
}

describe("parseAgentConfig", () => {
  it("fills in the defaults", () => {
    const config = parseAgentConfig(MINIMAL, "/etc/nimbus");
    assert.deepEqual(config, {
      source: "agent.toml",
      apiBaseUrl: "http://127.0.0.1:4800",
      clusterJoinTokenPath: "/etc/nimbus/token.key",
      concurrentTasks: Math.min(os.availableParallelism(), 1024),
      baseDirectory: "/etc/nimbus",
      workDirectory: "/etc/nimbus/work",
      labels: {},
      binaryCachesPath: undefined,
      secretsJsonPath: undefined,
      nixSettings: {},
      machineSubstituters: true,
      builtinCache: true,
      remotePlatformsWithSameFeatures: [],
      logLevel: "info",
      systems: undefined,
      systemFeatures: undefined,
      mandatoryFeatures: [],
      heartbeatIntervalMs: 30_000,
      shutdown: "finish",
      shutdownTimeoutMs: 600_000,
      ackTimeoutMs: 60_000,
      evaluation: {
        isolation: "namespaces",
        allowedUris: [],
        hiddenPaths: [],
        timeoutMs: 1_800_000,
        memoryBytes: 8192 * 1024 * 1024,
        maxAttributes: 100_000,
      },
      allowLocalRepositories: false,
    });
  });

  it("reads every key", () => {
    const config = parseAgentConfig(
      `
apiBaseUrl = "https://nimbus.example.com/"
clusterJoinTokenPath = "/run/secrets/join.key"
concurrentTasks = 6
baseDirectory = "/var/lib/nimbus-agent"
workDirectory = "scratch"
binaryCachesPath = "secrets/binary-caches.json"
secretsJsonPath = "/run/secrets/secrets.json"
remotePlatformsWithSameFeatures = ["aarch64-linux"]
logLevel = "debug"
systems = ["x86_64-linux", "i686-linux"]
systemFeatures = ["kvm", "big-parallel"]
mandatoryFeatures = ["gpu"]
heartbeatIntervalSeconds = 20
shutdown = "hand-back"
shutdownTimeoutSeconds = 90.5
machineSubstituters = false
ackTimeoutSeconds = 45
evaluationIsolation = "none"
allowedUris = ["https://github.com/", "https://api.github.com/"]
evaluationHiddenPaths = ["/etc/nimbus", "keys"]
evaluationTimeoutSeconds = 600
evaluationMemoryMiB = 4096
evaluationMaxAttributes = 50000
allowLocalRepositories = true

[labels]
team = "infra"
rack = 7
gpu = true
zones = ["a", "b"]
owner = { name = "ops", oncall = false }

[nixSettings]
"extra-system-features" = "gpu"
cores = "4"
`,
      "/etc/nimbus",
      "/etc/nimbus/agent.toml",
    );
    assert.deepEqual(config, {
      source: "/etc/nimbus/agent.toml",
      apiBaseUrl: "https://nimbus.example.com",
      clusterJoinTokenPath: "/run/secrets/join.key",
      concurrentTasks: 6,
      baseDirectory: "/var/lib/nimbus-agent",
      workDirectory: "/var/lib/nimbus-agent/scratch",
      labels: { team: "infra", rack: 7, gpu: true, zones: ["a", "b"], owner: { name: "ops", oncall: false } },
      binaryCachesPath: "/var/lib/nimbus-agent/secrets/binary-caches.json",
      secretsJsonPath: "/run/secrets/secrets.json",
      nixSettings: { "extra-system-features": "gpu", cores: "4" },
      machineSubstituters: false,
      builtinCache: true,
      remotePlatformsWithSameFeatures: ["aarch64-linux"],
      logLevel: "debug",
      systems: ["x86_64-linux", "i686-linux"],
      systemFeatures: ["kvm", "big-parallel"],
      mandatoryFeatures: ["gpu"],
      heartbeatIntervalMs: 20_000,
      shutdown: "hand-back",
      shutdownTimeoutMs: 90_500,
      ackTimeoutMs: 45_000,
      evaluation: {
        isolation: "none",
        allowedUris: ["https://github.com/", "https://api.github.com/"],
        hiddenPaths: ["/etc/nimbus", "/var/lib/nimbus-agent/keys"],
        timeoutMs: 600_000,
        memoryBytes: 4096 * 1024 * 1024,
        maxAttributes: 50_000,
      },
      allowLocalRepositories: true,
    });
  });

  it('turns concurrentTasks = "auto" into the number of CPUs', () => {
    const config = parseAgentConfig(`${MINIMAL}concurrentTasks = "auto"`, "/etc/nimbus");
    assert.equal(config.concurrentTasks, os.availableParallelism());
  });

  it("resolves a relative baseDirectory against the file's directory, and paths against baseDirectory", () => {
    const config = parseAgentConfig(`${MINIMAL}baseDirectory = "state"`, "/etc/nimbus");
    assert.equal(config.baseDirectory, "/etc/nimbus/state");
    assert.equal(config.clusterJoinTokenPath, "/etc/nimbus/state/token.key");
    assert.equal(config.workDirectory, "/etc/nimbus/state/work");
  });

  it("accepts Hercules' log levels", () => {
    assert.equal(parseAgentConfig(`${MINIMAL}logLevel = "WarningS"`, "/x").logLevel, "warn");
    assert.equal(parseAgentConfig(`${MINIMAL}logLevel = "DebugS"`, "/x").logLevel, "debug");
  });

  it("accepts a fractional heartbeat interval", () => {
    assert.equal(parseAgentConfig(`${MINIMAL}heartbeatIntervalSeconds = 0.5`, "/x").heartbeatIntervalMs, 500);
  });

  it("names an unknown key, suggests the near one, and flags Hercules-only keys", () => {
    assert.deepEqual(problemsOf(`${MINIMAL}concurentTasks = 4`), [
      'agent.toml: unknown key "concurentTasks" (did you mean "concurrentTasks"?)',
    ]);
    assert.deepEqual(problemsOf(`${MINIMAL}frobnicate = 1`), ['agent.toml: unknown key "frobnicate"']);
    assert.deepEqual(problemsOf(`${MINIMAL}nixUserIsTrusted = true`), [
      'agent.toml: unknown key "nixUserIsTrusted" (a Hercules CI agent setting Nimbus does not support: remove it)',
    ]);
  });

  it("names missing required keys", () => {
    assert.deepEqual(problemsOf(""), [
      'agent.toml: missing required key "apiBaseUrl" (an http:// or https:// URL, such as "http://127.0.0.1:4800")',
      'agent.toml: missing required key "clusterJoinTokenPath" (a file path (a non-empty string))',
    ]);
  });

  const wrong: Array<[string, string]> = [
    [`apiBaseUrl = "ftp://example.com"`, '"apiBaseUrl" must be an http:// or https:// URL'],
    [`apiBaseUrl = "not a url"`, '"apiBaseUrl" must be an http:// or https:// URL'],
    [`apiBaseUrl = 4800`, '"apiBaseUrl" must be an http:// or https:// URL'],
    [`clusterJoinTokenPath = ""`, '"clusterJoinTokenPath" must be a file path'],
    [`concurrentTasks = 0`, '"concurrentTasks" must be a positive integer or "auto"'],
    [`concurrentTasks = 2.5`, '"concurrentTasks" must be a positive integer or "auto"'],
    [`concurrentTasks = "many"`, '"concurrentTasks" must be a positive integer or "auto"'],
    [`concurrentTasks = 5000`, '"concurrentTasks" must be at most 1024'],
    [`baseDirectory = 3`, '"baseDirectory" must be a directory path'],
    [`workDirectory = false`, '"workDirectory" must be a directory path'],
    [`labels = "x"`, '"labels" must be a table of labels'],
    [`labels = { built = 1979-05-27T07:32:00Z }`, '"labels.built" must be a label'],
    [`binaryCachesPath = []`, '"binaryCachesPath" must be a file path'],
    [`secretsJsonPath = 1`, '"secretsJsonPath" must be a file path'],
    [`nixSettings = { sandbox = false }`, '"nixSettings.sandbox" must be a Nix setting name'],
    [`nixSettings = []`, '"nixSettings" must be a table of Nix settings'],
    [`remotePlatformsWithSameFeatures = "aarch64-linux"`, '"remotePlatformsWithSameFeatures" must be an array of Nix systems'],
    [`logLevel = "loud"`, '"logLevel" must be one of "debug", "info", "warn", "error"'],
    [`systems = []`, '"systems" must be a non-empty array of Nix systems'],
    [`systems = ["x86_64-linux", "no spaces allowed"]`, '"systems[1]" must be a Nix system such as "x86_64-linux"'],
    [`systemFeatures = "kvm"`, '"systemFeatures" must be an array of Nix system features'],
    [`mandatoryFeatures = [1]`, '"mandatoryFeatures[0]" must be a Nix system feature'],
    [`heartbeatIntervalSeconds = 600`, '"heartbeatIntervalSeconds" must be below 600'],
    [`heartbeatIntervalSeconds = 0`, '"heartbeatIntervalSeconds" must be a positive number of seconds below 600'],
    [`heartbeatIntervalSeconds = "30"`, '"heartbeatIntervalSeconds" must be a positive number of seconds below 600'],
    [`shutdown = "now"`, '"shutdown" must be "finish" (let running tasks end) or "hand-back" (stop them and give them back to the service)'],
    [`shutdownTimeoutSeconds = -1`, '"shutdownTimeoutSeconds" must be a number of seconds from 0 to 86400'],
    [`shutdownTimeoutSeconds = 100000`, '"shutdownTimeoutSeconds" must be at most 86400'],
    [`ackTimeoutSeconds = 0`, '"ackTimeoutSeconds" must be a positive number of seconds, at most 3600'],
    [`evaluationIsolation = "chroot"`, '"evaluationIsolation" must be "namespaces"'],
    [`allowedUris = "https://github.com/"`, '"allowedUris" must be an array of URI prefixes'],
    [`allowedUris = ["https://a b"]`, '"allowedUris[0]" must be a URI prefix without spaces'],
    [`evaluationHiddenPaths = [""]`, '"evaluationHiddenPaths[0]" must be a path'],
    [`evaluationTimeoutSeconds = 0`, '"evaluationTimeoutSeconds" must be a positive number of seconds'],
    [`evaluationMemoryMiB = 100`, '"evaluationMemoryMiB" must be a whole number of MiB, at least 256'],
    [`evaluationMaxAttributes = 0`, '"evaluationMaxAttributes" must be a whole number from 1 to 10000000'],
    [`allowLocalRepositories = "yes"`, '"allowLocalRepositories" must be true or false'],
    [`nixSettings = { restrict-eval = "false" }`, '"nixSettings.restrict-eval" cannot be set: the agent always evaluates in restricted mode'],
    [`nixSettings = { allowed-uris = "https://" }`, '"nixSettings.allowed-uris" cannot be set: use "allowedUris"'],
    [`nixSettings = { allow-unsafe-native-code-during-evaluation = "true" }`, '"nixSettings.allow-unsafe-native-code-during-evaluation" cannot be set'],
    [`nixSettings = { nix-path = "nixpkgs=/x" }`, '"nixSettings.nix-path" cannot be set'],
  ];
  for (const [line, expected] of wrong) {
    it(`rejects ${line}`, () => {
      const text = line.startsWith("apiBaseUrl") || line.startsWith("clusterJoinTokenPath")
        ? `${MINIMAL.split("\n").filter((l) => !l.startsWith(line.split(" ")[0]!)).join("\n")}\n${line}`
        : `${MINIMAL}${line}`;
      const problems = problemsOf(text);
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.ok(problems[0]!.startsWith(`agent.toml: ${expected}`), `got: ${problems[0]}`);
    });
  }

  it("reports every problem at once", () => {
    const problems = problemsOf(`${MINIMAL}concurrentTasks = -1\nlogLevel = 3\ntypo = 1`);
    assert.equal(problems.length, 3, problems.join("\n"));
  });

  it("names the file, line and column of a TOML syntax error", () => {
    const problems = problemsOf(`${MINIMAL}concurrentTasks = = 4\n`);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^agent\.toml:3:\d+: invalid TOML: /);
  });
});

describe("docs/agent.md", () => {
  it("shows an agent.toml that parses", async () => {
    const doc = await readFile(new URL("../../../docs/agent.md", import.meta.url), "utf8");
    const example = /```toml\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(example, "docs/agent.md has a toml example");
    const config = parseAgentConfig(example, "/etc/nimbus");
    assert.equal(config.baseDirectory, "/var/lib/nimbus-agent");
    assert.deepEqual(config.nixSettings, { cores: "8", "extra-system-features": "gpu" });
  });
});

describe("loadAgentConfig", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-config-test-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves paths against the file's own directory", async () => {
    await writeFile(path.join(dir, "agent.toml"), MINIMAL);
    const config = await loadAgentConfig(path.join(dir, "agent.toml"));
    assert.equal(config.baseDirectory, dir);
    assert.equal(config.clusterJoinTokenPath, path.join(dir, "token.key"));
    assert.equal(config.source, path.join(dir, "agent.toml"));
  });

  it("names the file in validation errors", async () => {
    const file = path.join(dir, "bad.toml");
    await writeFile(file, `${MINIMAL}concurrentTasks = "lots"`);
    await assert.rejects(loadAgentConfig(file), {
      name: "AgentConfigError",
      message: `${file}: "concurrentTasks" must be a positive integer or "auto"`,
    });
  });

  it("says so when the file does not exist", async () => {
    await assert.rejects(loadAgentConfig(path.join(dir, "missing.toml")), {
      name: "AgentConfigError",
      message: new RegExp(`${path.join(dir, "missing.toml")}: no such file`),
    });
  });
});

describe("readClusterJoinToken", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-token-test-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads and trims the token", async () => {
    await writeFile(path.join(dir, "ok.key"), "  nimbus_abc123\n\n");
    assert.equal(await readClusterJoinToken(path.join(dir, "ok.key")), "nimbus_abc123");
  });

  it("tells how to create a missing token file", async () => {
    const tokenPath = path.join(dir, "missing.key");
    await assert.rejects(readClusterJoinToken(tokenPath), {
      name: "AgentConfigError",
      message: `cluster join token file ${tokenPath} does not exist — create one with \`nimbus token create > ${tokenPath}\``,
    });
  });

  it("tells how to fill an empty token file", async () => {
    const tokenPath = path.join(dir, "empty.key");
    await writeFile(tokenPath, "\n");
    await assert.rejects(readClusterJoinToken(tokenPath), {
      name: "AgentConfigError",
      message: new RegExp(`${tokenPath} is empty — create one with \`nimbus token create > ${tokenPath}\``),
    });
  });

  it("refuses a file that is not one token", async () => {
    const tokenPath = path.join(dir, "two.key");
    await writeFile(tokenPath, "one\ntwo\n");
    await assert.rejects(readClusterJoinToken(tokenPath), { message: /does not hold a single token/ });
  });

  // A directory cannot be read as a file even by root, unlike a file with mode 000.
  it("says when the file cannot be read", async () => {
    const tokenPath = path.join(dir, "a-directory.key");
    await mkdir(tokenPath);
    await assert.rejects(readClusterJoinToken(tokenPath), { message: /cannot read cluster join token file .*EISDIR/ });
  });
});
