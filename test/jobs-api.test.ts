import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DerivationLog, DerivationPage, DerivationStatus, JobList, JobView } from "@nimbus/protocol";
import {
  attributeKey,
  jobStatusKey,
  localResourceName,
  logChunk,
  type BuildLogItem,
  type DerivationItem,
  type JobAttributeItem,
  type JobDerivationItem,
  type JobItem,
  type TableName,
} from "@nimbus/service";
import { agentInfo } from "./support/raw-agent.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

const JOB = "j000000000001aaaaaaaa";
const FAILED = 2500;
const drv = (name: string, i = 0) => `/nix/store/${String(i).padStart(32, "0")}-${name}.drv`;
const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();

function job(jobId: string, createdAt: string, overrides: Partial<JobItem> = {}): JobItem {
  return {
    jobId,
    listKey: "job",
    repository: "acme/widgets",
    ref: "refs/heads/main",
    commit: "a".repeat(40),
    cloneUrl: "https://github.com/acme/widgets.git",
    trigger: { event: "push", deliveryId: `d-${jobId}`, sender: "octocat" },
    status: "building",
    createdAt,
    updatedAt: createdAt,
    evaluation: { status: "succeeded", taskId: `eval-${jobId}`, agent: "builder-1" },
    ...overrides,
  };
}

function derivation(drvPath: string, status: DerivationStatus, overrides: Partial<DerivationItem> = {}): DerivationItem {
  return {
    drvPath,
    system: "x86_64-linux",
    requiredFeatures: [],
    outputs: { out: drvPath.replace(/\.drv$/, "") },
    status,
    queueKey: "x86_64-linux",
    attempt: 1,
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

describe("job read API over seeded tables", () => {
  let stack: TestStack;
  let documents: DynamoDBDocumentClient;

  async function put(table: TableName, items: object[]) {
    const batches = Array.from({ length: Math.ceil(items.length / 25) }, (_, i) => items.slice(i * 25, i * 25 + 25));
    // A few writers at once: dynalite is one process, more only queue up.
    for (let i = 0; i < batches.length; i += 8) {
      await Promise.all(
        batches.slice(i, i + 8).map(async (batch) => {
          let request: any = { [localResourceName("nimbus", "local", table)]: batch.map((Item) => ({ PutRequest: { Item } })) };
          while (request && Object.keys(request).length > 0) {
            request = (await documents.send(new BatchWriteCommand({ RequestItems: request }))).UnprocessedItems;
          }
        }),
      );
    }
  }

  const jobDerivation = (jobId: string, drvPath: string, status: DerivationStatus): JobDerivationItem => ({
    jobId,
    drvPath,
    status,
    jobStatus: jobStatusKey(jobId, status),
  });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    documents = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: stack.dynamodbEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
      { marshallOptions: { removeUndefinedValues: true } },
    );

    // 120 older jobs to page through, and the one under test, newest.
    await put("Jobs", [
      ...Array.from({ length: 120 }, (_, i) => job(`j0000000000${String(i).padStart(3, "0")}bbbbbbb`, at(i))),
      job(JOB, at(500), { status: "failed", finishedAt: at(600), attributeErrors: 1 }),
    ]);

    const failed = Array.from({ length: FAILED }, (_, i) => drv("broken", i));
    const rows: Array<[string, DerivationStatus, Partial<DerivationItem>?]> = [
      ...failed.map((p, i): [string, DerivationStatus, Partial<DerivationItem>] => [
        p,
        "failed",
        { failure: { reason: `builder failed (${i})`, exitCode: 2, logTail: ["make: *** [all] Error 2"] } },
      ]),
      [drv("ok", 1), "succeeded", { builtBy: { hostname: "builder-1", connectionId: "c-1", labels: { rack: "r1" } } }],
      [drv("ok", 2), "succeeded"],
      [drv("ok", 3), "succeeded"],
      [drv("x86", 1), "queued"],
      [drv("arm", 1), "queued", { system: "aarch64-linux", requiredFeatures: ["big-parallel"] }],
      [drv("downstream", 1), "dependency-failed", { failure: { reason: "input failed", dependency: failed[0]! } }],
    ];
    await put("Derivations", rows.map(([p, status, extra]) => derivation(p, status, extra)));
    await put("JobDerivations", rows.map(([p, status]) => jobDerivation(JOB, p, status)));
    // Another job's rows must not leak into this one's counts or pages.
    await put("JobDerivations", [jobDerivation("j-other", drv("broken", 0), "failed")]);

    const attributes: JobAttributeItem[] = [
      { path: ["packages", "ok"], drvPath: drv("ok", 1) },
      { path: ["packages", "broken"], drvPath: drv("broken", 0) },
      { path: ["packages", "substituted"], drvPath: drv("substituted", 9) },
      { path: ["checks", "syntax"], error: "error: undefined variable 'foo'" },
    ].map((a) => ({ jobId: JOB, attribute: attributeKey(a.path), ...a }));
    await put("JobAttributes", attributes);

    // Attempt 1 of a long log, then a longer attempt 2: only attempt 2 is shown, its last 10,000 lines.
    const logs: BuildLogItem[] = [];
    for (let seq = 0; seq < 3; seq++) logs.push({ drvPath: drv("broken", 0), chunk: logChunk(1, seq), lines: [`attempt 1 chunk ${seq}`] });
    for (let seq = 0; seq < 12; seq++) {
      logs.push({ drvPath: drv("broken", 0), chunk: logChunk(2, seq), lines: Array.from({ length: 1000 }, (_, n) => `line ${seq * 1000 + n}`) });
    }
    logs.push({ drvPath: drv("ok", 1), chunk: logChunk(1, 0), lines: ["building", "done"] });
    await put("BuildLogs", logs);
  });
  after(async () => {
    documents?.destroy();
    await stack?.cleanup();
  });

  const get = async (path: string) => stack.api("GET", path);

  it("shows a job with counts, attributes and its first failures", async () => {
    const { status, body } = await get(`/api/jobs/${JOB}`);
    assert.equal(status, 200, JSON.stringify(body));
    const view = JobView.parse(body);
    assert.deepEqual(view.counts, { failed: FAILED, succeeded: 3, queued: 2, "dependency-failed": 1 });
    assert.equal(view.status, "failed");
    assert.equal(view.finishedAt, at(600));
    assert.deepEqual(view.evaluation, { status: "succeeded", agent: "builder-1" });
    assert.deepEqual(view.trigger, { event: "push", deliveryId: `d-${JOB}`, sender: "octocat" });

    const byName = Object.fromEntries(view.attributes.map((a) => [a.path.join("."), a]));
    assert.equal(view.attributes.length, 4);
    assert.equal(byName["packages.ok"]!.status, "succeeded");
    assert.equal(byName["packages.broken"]!.status, "failed");
    assert.equal(byName["packages.substituted"]!.status, "cached", "no Derivation item: outputs were already valid");
    assert.deepEqual(byName["checks.syntax"], { path: ["checks", "syntax"], status: "error", error: "error: undefined variable 'foo'" });

    assert.equal(view.failures.length, 100);
    assert.ok(view.failures.every((f) => f.status === "failed"), "failed derivations come first");
    assert.deepEqual(view.failures[0], {
      drvPath: drv("broken", 0),
      status: "failed",
      reason: "builder failed (0)",
      exitCode: 2,
      logTail: ["make: *** [all] Error 2"],
    });
  });

  it("lists dependency failures with their cause when there are few failures", async () => {
    const small = "j000000000002cccccccc";
    await put("Jobs", [job(small, at(400), { status: "failed" })]);
    await put("JobDerivations", [jobDerivation(small, drv("downstream", 1), "dependency-failed"), jobDerivation(small, drv("broken", 0), "failed")]);
    const view = JobView.parse((await get(`/api/jobs/${small}`)).body);
    assert.deepEqual(view.failures.map((f) => [f.status, f.drvPath]), [
      ["failed", drv("broken", 0)],
      ["dependency-failed", drv("downstream", 1)],
    ]);
    assert.equal(view.failures[1]!.dependency, drv("broken", 0));
    assert.deepEqual(view.attributes, []);
  });

  it("lists jobs newest first, a page at a time", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const { status, body } = await get(`/api/jobs?limit=50${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(status, 200, JSON.stringify(body));
      const list = JobList.parse(body);
      seen.push(...list.jobs.map((j) => j.createdAt));
      cursor = list.cursor;
      pages++;
    } while (cursor);
    assert.equal(seen.length, 122);
    assert.equal(pages, 3, "the last page carries no cursor");
    assert.deepEqual(seen, [...seen].sort().reverse());
    assert.equal(JobList.parse((await get("/api/jobs")).body).jobs.length, 50, "default limit");
    assert.equal(JobList.parse((await get("/api/jobs?limit=1")).body).jobs[0]!.id, JOB);
  });

  it("pages 2,500 failed derivations by status with cursors", async () => {
    const seen = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const { status, body } = await get(`/api/jobs/${JOB}/derivations?status=failed&limit=200${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(status, 200, JSON.stringify(body));
      const page = DerivationPage.parse(body);
      for (const d of page.derivations) {
        assert.equal(d.status, "failed");
        assert.match(d.failure!.reason, /^builder failed \(\d+\)$/);
        seen.add(d.drvPath);
      }
      cursor = page.cursor;
      pages++;
    } while (cursor);
    assert.equal(seen.size, FAILED);
    assert.equal(pages, Math.ceil(FAILED / 200));
  });

  it("pages all of a job's derivations without a status", async () => {
    let cursor: string | undefined;
    const statuses: Record<string, number> = {};
    do {
      const page = DerivationPage.parse((await get(`/api/jobs/${JOB}/derivations?limit=200${cursor ? `&cursor=${cursor}` : ""}`)).body);
      for (const d of page.derivations) statuses[d.status] = (statuses[d.status] ?? 0) + 1;
      cursor = page.cursor;
    } while (cursor);
    assert.deepEqual(statuses, { failed: FAILED, succeeded: 3, queued: 2, "dependency-failed": 1 });
    const succeeded = DerivationPage.parse((await get(`/api/jobs/${JOB}/derivations?status=succeeded`)).body).derivations;
    assert.deepEqual(succeeded[0]!.builtBy, { hostname: "builder-1", connectionId: "c-1", labels: { rack: "r1" } });
    assert.deepEqual(succeeded[0]!.outputs, { out: drv("ok", 1).replace(/\.drv$/, "") });
  });

  it("marks queued derivations no connected agent can build", async () => {
    const queued = async () =>
      Object.fromEntries(
        DerivationPage.parse((await get(`/api/jobs/${JOB}/derivations?status=queued`)).body).derivations.map((d) => [d.drvPath, d.waitingForAgent]),
      );
    assert.deepEqual(await queued(), {
      [drv("x86", 1)]: { system: "x86_64-linux", features: [] },
      [drv("arm", 1)]: { system: "aarch64-linux", features: ["big-parallel"] },
    });
    const now = new Date().toISOString();
    await stack.setAttributes("Connections", { connectionId: "conn-x86" }, {
      tokenId: "t", shard: "c", connectedAt: now, lastSeen: now, sessionId: "session-x86", helloAt: now, agent: agentInfo({ systems: ["x86_64-linux"] }),
    });
    assert.deepEqual(await queued(), {
      [drv("x86", 1)]: undefined,
      [drv("arm", 1)]: { system: "aarch64-linux", features: ["big-parallel"] },
    });
  });

  it("serves the latest attempt's log tail, by full path or basename", async () => {
    const full = await get(`/api/derivations/${encodeURIComponent(drv("broken", 0))}/log`);
    assert.equal(full.status, 200, JSON.stringify(full.body));
    const log = DerivationLog.parse(full.body);
    assert.equal(log.truncated, true);
    assert.equal(log.lines.length, 10_000);
    assert.equal(log.lines[0], "line 2000");
    assert.equal(log.lines.at(-1), "line 11999");
    assert.ok(!log.lines.some((l) => l.startsWith("attempt 1")));

    const short = DerivationLog.parse((await get(`/api/derivations/${drv("ok", 1).slice("/nix/store/".length)}/log`)).body);
    assert.deepEqual(short, { drvPath: drv("ok", 1), lines: ["building", "done"], truncated: false });
    const none = DerivationLog.parse((await get(`/api/derivations/${encodeURIComponent(drv("x86", 1))}/log`)).body);
    assert.deepEqual(none, { drvPath: drv("x86", 1), lines: [], truncated: false });
  });

  it("answers unknown ids with 404 and bad parameters with 400", async () => {
    const cursorOf = async (path: string) => (await get(path)).body.cursor as string;
    const failedCursor = await cursorOf(`/api/jobs/${JOB}/derivations?status=failed&limit=1`);
    const jobsCursor = await cursorOf("/api/jobs?limit=1");
    const cases: Array<[string, number, RegExp]> = [
      ["/api/jobs/j000000000009dddddddd", 404, /no job with id/],
      ["/api/jobs/not%20an%20id", 404, /no job with id/],
      ["/api/jobs/j000000000009dddddddd/derivations", 404, /no job with id/],
      [`/api/derivations/${encodeURIComponent(drv("unknown", 7))}/log`, 404, /no derivation/],
      ["/api/derivations/not-a-drv/log", 400, /\.drv store path/],
      ["/api/jobs?limit=0", 400, /limit must be/],
      ["/api/jobs?limit=201", 400, /limit must be/],
      ["/api/jobs?limit=ten", 400, /limit must be/],
      ["/api/jobs?cursor=bm90LWpzb24", 400, /cursor/],
      [`/api/jobs?cursor=${failedCursor}`, 400, /cursor/],
      [`/api/jobs/${JOB}/derivations?cursor=${jobsCursor}`, 400, /cursor/],
      [`/api/jobs/${JOB}/derivations?status=succeeded&cursor=${failedCursor}`, 400, /cursor/],
      [`/api/jobs/${JOB}/derivations?status=broken`, 400, /status must be one of waiting, queued, building/],
    ];
    for (const [path, status, message] of cases) {
      const answer = await get(path);
      assert.equal(answer.status, status, `${path}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.error.message, message, path);
    }
    assert.equal((await stack.api("GET", `/api/jobs/${JOB}`, undefined, null)).status, 401);
  });
});
