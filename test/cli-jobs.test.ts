import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { postGithubWebhook, pushPayload } from "@nimbus/cli";
import { JobList, JobView } from "@nimbus/protocol";
import { jobStatusKey, localResourceName, logChunk, type TableName } from "@nimbus/service";
import { runCli } from "./support/agent-process.ts";
import { hello, RawAgent } from "./support/raw-agent.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

describe("CLI: trigger, job, jobs, logs", () => {
  let stack: TestStack;
  let documents: DynamoDBDocumentClient;
  let repo: string;
  let env: Record<string, string>;
  const commits: string[] = [];

  const git = (...args: string[]) => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();
  const put = (table: TableName, Item: Record<string, unknown>) =>
    documents.send(new PutCommand({ TableName: localResourceName("nimbus", "local", table), Item }));
  const jobItem = async (jobId: string) => (await stack.scan("Jobs")).find((j: any) => j.jobId === jobId) as any;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    env = { NIMBUS_PORT: String(stack.port), NIMBUS_DATA_DIR: stack.dataDir };
    documents = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: stack.dynamodbEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
    );
    repo = await realpath(await mkdtemp(join(tmpdir(), "nimbus-repo-")));
    git("init", "-q", "-b", "main");
    git("config", "user.email", "test@example.com");
    git("config", "user.name", "Test");
    for (const n of [1, 2]) {
      await writeFile(join(repo, "ci.nix"), `# ${n}\n{ }\n`);
      git("add", "ci.nix");
      git("commit", "-q", "-m", `commit ${n}`);
      commits.push(git("rev-parse", "HEAD"));
    }
    git("branch", "feature", commits[0]!);
  });
  after(async () => {
    documents?.destroy();
    await stack?.cleanup();
    if (repo) await rm(repo, { recursive: true, force: true });
  });

  it("`nimbus trigger <path>` sends a signed push for the current branch and prints the job id alone", async () => {
    const run = await runCli(["trigger", repo], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^j[0-9a-f]{20}\n$/);
    const job = await jobItem(run.stdout.trim());
    assert.equal(job.commit, commits[1]);
    assert.equal(job.ref, "refs/heads/main");
    assert.equal(job.cloneUrl, `file://${repo}`);
    assert.equal(job.repository, basename(repo));
    assert.equal(job.trigger.event, "push");
    assert.match(job.trigger.deliveryId, /^[0-9a-f-]{36}$/);
  });

  it("makes a job of its own for each trigger, even of one commit in the same second", async () => {
    // pushed_at counts whole seconds: two bodies of one commit pushed in one second are one body
    // replayed (one job), unless each carries its trigger's own id, as `nimbus trigger` sends.
    const secret = stack.secrets.GithubWebhookSecret;
    const push = { ref: "refs/heads/main", commit: commits[1]!, fullName: "acme/same-second", cloneUrl: `file://${repo}`, sender: "t", pushedAt: new Date() };
    const jobOf = async (body: string) => ((await (await postGithubWebhook(stack.url, secret, "push", body)).json()) as { jobId: string }).jobId;
    const replayed = [await jobOf(pushPayload(push)), await jobOf(pushPayload(push))];
    assert.equal(replayed[0], replayed[1], "one body, one job");
    const triggered = [await jobOf(pushPayload({ ...push, triggerId: "a" })), await jobOf(pushPayload({ ...push, triggerId: "b" }))];
    assert.notEqual(triggered[0], triggered[1], "two triggers, two jobs");

    const runs = await Promise.all([runCli(["trigger", repo], env), runCli(["trigger", repo], env)]);
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    const [a, b] = runs.map((run) => run.stdout.trim());
    assert.notEqual(a, b, "two jobs");
    assert.deepEqual([(await jobItem(a!)).commit, (await jobItem(b!)).commit], [commits[1], commits[1]]);
  });

  it("resolves --ref and a short --rev in a local repository", async () => {
    const byRef = await runCli(["trigger", repo, "--ref", "feature"], env);
    assert.equal(byRef.code, 0, byRef.stderr);
    const refJob = await jobItem(byRef.stdout.trim());
    assert.deepEqual([refJob.ref, refJob.commit], ["refs/heads/feature", commits[0]]);

    const byRev = await runCli(["trigger", join(repo, "."), "--rev", commits[0]!.slice(0, 8)], env);
    assert.equal(byRev.code, 0, byRev.stderr);
    const revJob = await jobItem(byRev.stdout.trim());
    assert.deepEqual([revJob.ref, revJob.commit], ["refs/heads/main", commits[0]]);
  });

  it("resolves a URL's ref with git ls-remote", async () => {
    const run = await runCli(["trigger", `file://${repo}`, "--ref", "feature"], env);
    assert.equal(run.code, 0, run.stderr);
    const job = await jobItem(run.stdout.trim());
    assert.deepEqual([job.commit, job.ref, job.cloneUrl], [commits[0], "refs/heads/feature", `file://${repo}`]);
  });

  it("says what is wrong when it cannot trigger", async () => {
    const notRepo = await mkdtemp(join(tmpdir(), "nimbus-not-repo-"));
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["trigger", notRepo], {}, /not a git repository/],
      [["trigger", join(notRepo, "missing")], {}, /neither a directory nor a git URL/],
      [["trigger", repo, "--rev", "nosuchrev"], {}, /no commit nosuchrev/],
      [["trigger", `file://${repo}`, "--rev", "abc123"], {}, /full 40-hex/],
      [["trigger", repo], { NIMBUS_WEBHOOK_SECRET: "wrong" }, /X-Hub-Signature-256 does not match/],
      [["--api", stack.url, "trigger", repo], {}, /no webhook secret/],
    ];
    const jobs = await stack.scan("Jobs");
    for (const [args, extra, message] of cases) {
      const run = await runCli(args, { ...env, ...extra });
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
      assert.equal(run.stdout, "");
      assert.match(run.stderr, message, args.join(" "));
    }
    assert.deepEqual(await stack.scan("Jobs"), jobs);
    await rm(notRepo, { recursive: true, force: true });
  });

  it("`nimbus job` and `nimbus jobs` show what the API shows", async () => {
    const jobId = (await runCli(["trigger", repo], env)).stdout.trim();
    const json = await runCli(["job", jobId, "--json"], env);
    assert.equal(json.code, 0, json.stderr);
    const view = JobView.parse(JSON.parse(json.stdout));
    assert.equal(view.id, jobId);
    assert.equal(view.status, "evaluating");

    const human = await runCli(["job", jobId], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`status\\s+evaluating`));
    assert.match(human.stdout, new RegExp(`commit\\s+${commits[1]}`));

    const table = await runCli(["jobs"], env);
    assert.equal(table.code, 0, table.stderr);
    const [header, first] = table.stdout.split("\n");
    assert.match(header!, /^ID\s+STATUS\s+REPOSITORY\s+REF\s+COMMIT\s+CREATED$/);
    assert.match(first!, new RegExp(`^${jobId}\\s+evaluating\\s+${basename(repo)}\\s+refs/heads/main\\s+${commits[1]!.slice(0, 12)}\\s`));
    const listed = JobList.parse(JSON.parse((await runCli(["jobs", "--json"], env)).stdout));
    assert.equal(listed.jobs[0]!.id, jobId);

    const missing = await runCli(["job", "j000000000000ffffffff"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no job with id/);
  });

  it("`nimbus job` on a held fork's job prints why it waits and the approval the service names", async () => {
    const jobId = (await runCli(["trigger", repo], env)).stdout.trim();
    const reason = "Pull request #7 comes from outsider/widgets: its code runs only once someone with write access approves this commit.";
    // Held as the webhook holds a fork's job (edges/webhook.ts), with a label other than the
    // default: what is printed is what the service gives, not a name the CLI knows.
    await stack.setAttributes("Jobs", { jobId }, { status: "held", holdReason: reason, approvalLabel: "ship-it" });
    const held = await runCli(["job", jobId], env);
    assert.equal(held.code, 0, held.stderr);
    assert.match(held.stdout, /status\s+held\n/);
    assert.ok(
      held.stdout.includes(`\nheld for approval:\n  ${reason}\n  approve it on GitHub: Approve and run on its check run, or the label ship-it on the pull request\n`),
      held.stdout,
    );
    assert.equal(JobView.parse(JSON.parse((await runCli(["job", jobId, "--json"], env)).stdout)).approvalLabel, "ship-it");

    // No longer held (cancelled): neither is printed.
    await stack.setAttributes("Jobs", { jobId }, { status: "cancelled", finishedAt: new Date().toISOString() });
    const cancelled = await runCli(["job", jobId], env);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.doesNotMatch(cancelled.stdout, /held for approval|ship-it|outsider/);
  });

  it("`nimbus job --wait` waits for the end and exits 0 on success", async () => {
    const jobId = (await runCli(["trigger", repo], env)).stdout.trim();
    // The job ends only once the command has shown it running (a slow machine starts it late).
    let shownRunning!: () => void;
    const running = new Promise<void>((resolve) => (shownRunning = resolve));
    const waiting = runCli(["job", jobId, "--wait"], env, (stderr) => stderr.includes("evaluating") && shownRunning());
    await running;
    await stack.setAttributes("Jobs", { jobId }, { status: "succeeded", finishedAt: new Date().toISOString() });
    const run = await waiting;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /status\s+succeeded/);
    assert.match(run.stderr, /evaluating/, `stdout: ${run.stdout}`);
  });

  it("`nimbus job --wait` lists failures with their log tail and exits 1", async () => {
    const jobId = (await runCli(["trigger", repo], env)).stdout.trim();
    const drvPath = `/nix/store/${"1".repeat(32)}-broken.drv`;
    const now = new Date().toISOString();
    await put("Derivations", {
      drvPath, system: "x86_64-linux", requiredFeatures: [], outputs: { out: drvPath.slice(0, -4) }, inputDrvs: [], status: "failed",
      queueKey: "x86_64-linux", attempt: 1, createdAt: now, updatedAt: now,
      failure: { reason: "builder failed with exit code 2", exitCode: 2, logTail: ["cc: error: missing.c"] },
    });
    await put("JobDerivations", { jobId, drvPath, status: "failed", jobStatus: jobStatusKey(jobId, "failed") });
    await put("BuildLogs", { drvPath, chunk: logChunk(1, 0), lines: ["compiling", "cc: error: missing.c"] });
    // Finished as the service finishes a job: with its counts (storage/job-counts.ts).
    await stack.setAttributes("Jobs", { jobId }, { status: "failed", finishedAt: now, count_failed: 1 });

    const run = await runCli(["job", jobId, "--wait"], env);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /status\s+failed/);
    assert.match(run.stdout, /1 failed/);
    assert.ok(run.stdout.includes(`${drvPath}: failed: builder failed with exit code 2\n`), run.stdout);
    assert.match(run.stdout, /\| cc: error: missing\.c/);
    assert.match(run.stderr, new RegExp(`job ${jobId} failed`));

    const logs = await runCli(["logs", basename(drvPath)], env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout, "compiling\ncc: error: missing.c\n");
  });

  it("prints what agents and repositories sent as text: no terminal control sequences", async () => {
    // A window title, a cursor move, a colour, an 8-bit CSI, a bidi override.
    const hostile = "\u001b]0;pwned\u0007 \u001b[2A\u001b[31mred \u009b6n \u202eevil";
    const visible = "\\x1b]0;pwned\\x07 \\x1b[2Ared \\x9b6n \\u202eevil";
    const jobId = (await runCli(["trigger", repo], env)).stdout.trim();
    const drvPath = `/nix/store/${"2".repeat(32)}-hostile.drv`;
    const now = new Date().toISOString();
    await put("Derivations", {
      drvPath, system: "x86_64-linux", requiredFeatures: [], outputs: { out: drvPath.slice(0, -4) }, inputDrvs: [], status: "failed",
      queueKey: "x86_64-linux", attempt: 1, createdAt: now, updatedAt: now,
      failure: { reason: `failed: ${hostile}`, exitCode: 2, logTail: [hostile] },
    });
    await put("JobDerivations", { jobId, drvPath, status: "failed", jobStatus: jobStatusKey(jobId, "failed") });
    await put("BuildLogs", { drvPath, chunk: logChunk(1, 0), lines: ["plain", hostile] });
    const job = await jobItem(jobId);
    await stack.setAttributes("Jobs", { jobId }, { status: "failed", finishedAt: now, count_failed: 1, evaluation: { ...job.evaluation, error: `error: ${hostile}\nsecond line` } });
    const agent = await RawAgent.connect(stack.agentSocketUrl, (await stack.createToken("hostile-host")).token);
    assert.equal((await agent.request(hello({ hostname: `host ${hostile}` }))).type, "welcome");

    const outputs = {
      job: await runCli(["job", jobId], env),
      logs: await runCli(["logs", basename(drvPath)], env),
      agents: await runCli(["agents"], env),
    };
    agent.close();
    for (const [command, run] of Object.entries(outputs)) {
      assert.equal(run.code, 0, `${command}: ${run.stderr}`);
      assert.doesNotMatch(run.stdout + run.stderr, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/, `${command} printed a control character`);
      assert.ok(run.stdout.includes(visible), `${command} shows the text escaped:\n${run.stdout}`);
    }
    assert.match(outputs.job.stdout, /evaluation failed:\n  error: .*\n  second line\n/, "an error's own lines stay lines");
    assert.equal(outputs.logs.stdout, `plain\n${visible}\n`);
  });

  it("nimbus dashboard prints a one-time sign-in link alone on stdout", async () => {
    const run = await runCli(["dashboard"], env);
    assert.equal(run.code, 0, run.stderr);
    const link = run.stdout.trim();
    assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${stack.port}/sign-in\\?code=[\\w-]{43}$`));
    assert.match(run.stderr, /within 5 minutes: it signs in once/);
    const code = new URL(link).searchParams.get("code")!;
    const signIn = () =>
      fetch(`${stack.url}/api/dashboard/sign-in`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ code }) });
    assert.equal((await signIn()).status, 200);
    assert.equal((await signIn()).status, 401);
  });
});
