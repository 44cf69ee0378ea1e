/**
 * A private repository, end to end (docs/github.md, "Tokens"): a signed push for it reaches the
 * real local stack (GitHub App mode, pointed at the stand-in), the evaluation is sent to a real
 * agent process with an installation token minted at that moment, the agent fetches the commit
 * over HTTPS with it (basic auth, through git's askpass helper), real Nix evaluates and builds
 * it — and afterwards the token is in no table, API answer, log or file left behind.
 */
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { JobView } from "@nimbus/protocol";
import { tables, type TableName } from "@nimbus/service/resource-specs";
import { startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { makeGitRepo } from "./support/git-repo.ts";
import { GithubStandin, testAppKeys } from "./support/github-standin.ts";
import { startPrivateGitServer, type PrivateGitServer } from "./support/private-git-server.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const APP_ID = 5151;
const INSTALLATION = 31;
const REPO = "acme/secret";

/** Every file under `dir` (following no links), for looking inside. */
async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(path)));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

describe("a private repository is fetched with an installation token that is found nowhere afterwards (real agent, real Nix)", () => {
  const keys = testAppKeys();
  let standin: GithubStandin;
  let git: PrivateGitServer;
  let stack: TestStack;
  let agent: AgentProcess;
  let commit: string;
  const stackLog: string[] = [];
  const consoleLines: string[] = [];
  const restoreConsole: Array<() => void> = [];

  before(async () => {
    // The handlers run in this process: whatever they print is looked through too.
    for (const method of ["log", "error", "warn", "info"] as const) {
      const original = console[method];
      console[method] = (...args: unknown[]) => {
        consoleLines.push(args.map(String).join(" "));
        original.apply(console, args);
      };
      restoreConsole.push(() => (console[method] = original));
    }
    standin = await GithubStandin.start({
      appId: APP_ID,
      appPublicKey: keys.publicKey,
      installations: [{ id: INSTALLATION, account: "acme", repositories: [REPO], permissions: { checks: "write", contents: "read", metadata: "read" } }],
    });
    const nonce = randomUUID().slice(0, 8);
    const repo = await makeGitRepo("secret", {
      "ci.nix": `{ hello = derivation { name = "private-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo private > $out" ]; }; }`,
    });
    commit = repo.commit;
    // Only an installation token the stand-in issued for this repository, with contents:read, opens it.
    git = await startPrivateGitServer(repo.path, REPO, (user, password) =>
      user === "x-access-token" && standin.tokens.some((t) => t.token === password && t.repositories.includes(REPO) && t.permissions.contents === "read"),
    );
    stack = await startTestStack({
      sweepIntervalMs: 0,
      log: (line: string) => stackLog.push(line),
      secrets: { GithubAppId: String(APP_ID), GithubAppPrivateKey: keys.privateKey },
      environment: { NIMBUS_GITHUB_API_URL: standin.url, NIMBUS_PUBLIC_URL: "https://nimbus.example.org" },
    });
    const { token } = await stack.createToken("private");
    // The agent trusts the test's certificate; nothing else about it is special.
    agent = await startAgentProcess(stack.url, token, "", { GIT_SSL_CAINFO: git.caFile });
    await eventually(async () => ((await stack.api("GET", "/api/agents")).body.agents.length === 1 ? true : undefined), "the agent", 30_000);
  });
  after(async () => {
    for (const restore of restoreConsole) restore();
    agent?.child.kill("SIGKILL");
    await stack?.cleanup();
    await git?.close();
    await standin?.close();
  });

  it("is refused without credentials, fetched with the token minted for the evaluation, and the job runs", async () => {
    const body = JSON.stringify({
      ref: "refs/heads/main",
      after: commit,
      repository: { full_name: REPO, name: "secret", owner: { login: "acme" }, clone_url: git.cloneUrl, private: true },
      installation: { id: INSTALLATION },
      sender: { login: "maintainer" },
    });
    const response = await fetch(`${stack.url}/webhooks/github`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": `sha256=${createHmac("sha256", stack.secrets.GithubWebhookSecret).update(body).digest("hex")}`,
      },
      body,
    });
    assert.equal(response.status, 201);
    const { jobId } = (await response.json()) as { jobId: string };
    const job = await eventually(
      async () => {
        const view = JobView.parse((await stack.api("GET", `/api/jobs/${jobId}`)).body);
        return ["succeeded", "failed", "cancelled"].includes(view.status) ? view : undefined;
      },
      `job ${jobId} to finish (the agent said: ${agent.output().slice(-2000)})`,
      120_000,
    );
    assert.equal(job.evaluation.status, "succeeded", `${job.evaluation.error} — agent: ${agent.output().slice(-2000)}`);
    assert.equal(job.status, "succeeded", JSON.stringify(job));

    // The clone token: minted for this repository alone, read-only.
    const cloneTokens = standin.tokens.filter((t) => t.permissions.contents === "read");
    assert.equal(cloneTokens.length, 1, JSON.stringify(standin.tokens.map((t) => t.permissions)));
    assert.deepEqual(cloneTokens[0]!.repositories, [REPO]);
    assert.deepEqual(cloneTokens[0]!.permissions, { metadata: "read", contents: "read" });
    // git asked without credentials first, was refused, then came back with the token.
    assert.ok(git.requests.some((r) => r.status === 401 && r.credentials === undefined), JSON.stringify(git.requests));
    const fetched = git.requests.filter((r) => r.status === 200);
    assert.ok(fetched.length > 0, JSON.stringify(git.requests));
    for (const r of fetched) assert.equal(r.credentials, `x-access-token:${cloneTokens[0]!.token}`);
    // The fetch's credential directory is gone.
    assert.equal(existsSync(join(agent.dir, "work", "credentials", `eval-${jobId}`)), false);
  });

  it("leaves the token in no table, API answer, log or file", async () => {
    const secrets = standin.tokens.map((t) => t.token);
    assert.ok(secrets.length > 0);
    const found: string[] = [];
    const look = (where: string, text: string | Buffer) => {
      const haystack = typeof text === "string" ? text : text.toString("latin1");
      for (const secret of secrets) if (haystack.includes(secret)) found.push(where);
    };
    for (const table of Object.keys(tables) as TableName[]) look(`table ${table}`, JSON.stringify(await stack.scan(table)));
    const jobs = (await stack.api("GET", "/api/jobs")).body as { jobs: { id: string }[] };
    look("/api/jobs", JSON.stringify(jobs));
    for (const { id } of jobs.jobs) look(`/api/jobs/${id}`, JSON.stringify((await stack.api("GET", `/api/jobs/${id}`)).body));
    look("the stack's log", stackLog.join("\n"));
    look("what the handlers printed", consoleLines.join("\n"));
    look("the agent's log", agent.output());
    // Files: the agent's directories (work, checkouts, session) and the stack's data (dynalite's files included).
    const files = [...(await filesUnder(agent.dir)), ...(await filesUnder(stack.dataDir))];
    assert.ok(files.length > 5, `looked at ${files.length} files`);
    for (const file of files) {
      if ((await stat(file)).size < 64 * 1024 * 1024) look(file, await readFile(file));
    }
    assert.deepEqual(found, []);
    assert.match(agent.output(), /with a clone token/, "the agent said it fetched with one");
  });
});
