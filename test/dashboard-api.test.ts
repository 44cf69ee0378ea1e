import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { sendSignedPush } from "@nimbus/cli";
import {
  AgentList,
  AttributePage,
  DashboardSession,
  DerivationDetail,
  DerivationLog,
  DerivationPage,
  JobList,
  JobStatusView,
  JobView,
  LogPage,
  SignInCode,
  type BuildTask,
  type DerivationStatus,
  type EvaluationEvent,
} from "@nimbus/protocol";
import { bucketRange } from "../packages/dashboard/src/list/hash-ranges.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { seedFailedJob, type SeededJob } from "./support/seed-job.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// The endpoints the dashboard reads (docs/dashboard-api.md) through the local stack: jobs built
// by protocol-level agents for counts, history and attempts; a seeded job for long lists and logs.
const drv = (hash: string, name: string) => `/nix/store/${hash.padEnd(32, "0")}-${name}.drv`;
const OK = drv("0a", "ok");
const NEEDS_OK = drv("1b", "needs-ok");
const BROKEN = drv("2c", "broken");
const NEEDS_BROKEN = drv("3d", "needs-broken");
const FLAKY = drv("4f", "flaky");
const SLOW = drv("5g", "slow");
const derivation = (drvPath: string, inputs: string[] = []): EvaluationEvent => ({
  kind: "derivation",
  drvPath,
  system: "x86_64-linux",
  requiredFeatures: [],
  inputDrvs: inputs,
  outputs: { out: drvPath.replace(/\.drv$/, "") },
});
const attribute = (path: string[], drvPath: string): EvaluationEvent => ({ kind: "attribute", path, drvPath, attributeType: "regular", needsBuild: true });

const SAMPLE: EvaluationEvent[] = [
  derivation(OK),
  derivation(NEEDS_OK, [OK]),
  derivation(BROKEN),
  derivation(NEEDS_BROKEN, [BROKEN]),
  derivation(FLAKY),
  attribute(["packages", "ok"], OK),
  attribute(["packages", "needs-ok"], NEEDS_OK),
  attribute(["packages", "needs-broken"], NEEDS_BROKEN),
  attribute(["checks", "flaky"], FLAKY),
  { kind: "attribute-error", path: ["checks", "bad"], message: "error: attribute 'nope' missing" },
];

describe("dashboard API", () => {
  let stack: TestStack;
  let agent: ScriptedAgent;
  let flakyBuilds = 0;
  let jobId: string;
  let seeded: SeededJob;

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${stack.url}${path}`, { headers: { authorization: `Bearer ${stack.adminToken}`, ...headers } });
  const getJson = async <T>(path: string, schema: { parse(v: unknown): T }) => {
    const response = await get(path);
    const text = await response.text();
    assert.equal(response.status, 200, `${path}: ${text}`);
    return schema.parse(JSON.parse(text));
  };
  const errorOf = async (path: string) => {
    const response = await get(path);
    return { status: response.status, message: ((await response.json()) as { error: { message: string } }).error.message };
  };
  const push = async (repository: string, commit: string, ref = "refs/heads/main") => {
    const { status, body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository, commit, ref });
    assert.equal(status, 201, JSON.stringify(body));
    return body.jobId as string;
  };
  const waitFinished = (id: string) =>
    eventually(async () => {
      const { value } = { value: await getJson(`/api/jobs/${id}/summary`, JobStatusView) };
      return value.finishedAt ? value : undefined;
    }, `job ${id} to finish`, 30_000);

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("dashboard-api");
    agent = ScriptedAgent.create("builder-1", { concurrentTasks: 2 }, {
      evaluate: (task) => (task.repository === "acme/slow" ? [derivation(SLOW), attribute(["slow"], SLOW)] : SAMPLE),
      build: (task: BuildTask) => {
        if (task.drvPath === BROKEN) return { status: "failed", exitCode: 3, log: ["boom"] };
        if (task.drvPath === FLAKY && flakyBuilds++ === 0) return { status: "exceptional" };
        if (task.drvPath === SLOW) return { status: "succeeded", stream: { lines: Array.from({ length: 40 }, (_, i) => `slow ${i}`), everyMs: 250 } };
        return { status: "succeeded" };
      },
      buildMs: 50,
    });
    await agent.connect(stack.agentSocketUrl, token);
    jobId = await push("acme/widgets", "1".repeat(40));
    seeded = await seedFailedJob(stack.dynamodbEndpoint, { jobId: "j000000000001seededjob0", rows: 500, logMegabytes: 1 });
  });
  after(async () => {
    agent?.close();
    await stack?.cleanup();
  });

  describe("a job's counts", () => {
    it("are kept on the job while it runs and exact when it ends, matching its rows", async () => {
      const summary = await waitFinished(jobId);
      assert.equal(summary.status, "failed");
      assert.deepEqual(summary.counts, { succeeded: 3, failed: 1, "dependency-failed": 1 });
      // The same counts as the rows listed by status, and as the full view.
      for (const [status, n] of Object.entries(summary.counts) as [DerivationStatus, number][]) {
        const page = await getJson(`/api/jobs/${jobId}/derivations?status=${status}&limit=200`, DerivationPage);
        assert.equal(page.derivations.length, n, status);
      }
      assert.deepEqual((await getJson(`/api/jobs/${jobId}`, JobView)).counts, summary.counts);
      const [item] = (await stack.scan("Jobs")).filter((j) => j.jobId === jobId);
      assert.equal(item!.countsKept, true);
      assert.equal(item!.count_succeeded, 3);
      assert.equal(item!.count_waiting, 0);
    });

    it("summary answers the job without its attributes and failures, and 404s an unknown job", async () => {
      const summary = await get(`/api/jobs/${jobId}/summary`);
      const body = (await summary.json()) as Record<string, unknown>;
      assert.equal(body.attributes, undefined);
      assert.equal(body.failures, undefined);
      assert.equal((await errorOf("/api/jobs/j000000000001nosuchjob0/summary")).status, 404);
    });

    it("of a cancelled job are those after its cancellations", async () => {
      const slow = await push("acme/slow", "2".repeat(40), "refs/heads/feature");
      await eventually(async () => ((await getJson(`/api/jobs/${slow}/summary`, JobStatusView)).counts.building === 1 ? true : undefined), "the slow build to start");
      const cancelled = await fetch(`${stack.url}/api/jobs/${slow}/cancel`, { method: "POST", headers: { authorization: `Bearer ${stack.adminToken}` } });
      assert.equal(cancelled.status, 200);
      const summary = await getJson(`/api/jobs/${slow}/summary`, JobStatusView);
      assert.equal(summary.status, "cancelled");
      assert.deepEqual(summary.counts, { cancelled: 1 });
    });
  });

  describe("one derivation", () => {
    it("tells its history and attempts: an exceptional result retried, then success", async () => {
      const detail = await getJson(`/api/derivations/${encodeURIComponent(FLAKY)}`, DerivationDetail);
      assert.equal(detail.status, "succeeded");
      assert.equal(detail.attempt, 2);
      assert.deepEqual(
        detail.history.map((m) => [m.status, m.attempt]),
        [["waiting", 1], ["queued", 1], ["building", 1], ["queued", 2], ["building", 2], ["succeeded", 2]],
      );
      assert.deepEqual(
        detail.attempts.map((a) => [a.attempt, a.agent, a.outcome]),
        [[1, "builder-1", "exceptional"], [2, "builder-1", "succeeded"]],
      );
      assert.match(detail.attempts[0]!.reason ?? "", /agent error/);
      assert.deepEqual(detail.jobs, [jobId]);
    });

    it("tells a failure's exit code, its inputs, and a dependency failure's cause", async () => {
      const broken = await getJson(`/api/derivations/${encodeURIComponent(BROKEN)}`, DerivationDetail);
      assert.deepEqual(broken.attempts.map((a) => [a.outcome, a.exitCode]), [["failed", 3]]);
      const dependent = await getJson(`/api/derivations/${NEEDS_BROKEN.slice("/nix/store/".length)}`, DerivationDetail);
      assert.equal(dependent.status, "dependency-failed");
      assert.deepEqual(dependent.inputDrvs, [BROKEN]);
      assert.equal(dependent.failure?.dependency, BROKEN);
      assert.deepEqual(dependent.attempts, []);
      assert.equal((await errorOf(`/api/derivations/${encodeURIComponent(drv("9z", "none"))}`)).status, 404);
      assert.equal((await errorOf(`/api/derivations/not-a-drv`)).status, 400);
    });
  });

  describe("attributes", () => {
    it("narrows by a dotted prefix, in path order, and pages", async () => {
      const paths = async (query: string) => (await getJson(`/api/jobs/${jobId}/attributes?${query}`, AttributePage)).attributes.map((a) => a.path.join("."));
      assert.deepEqual(await paths(""), ["checks.bad", "checks.flaky", "packages.needs-broken", "packages.needs-ok", "packages.ok"]);
      assert.deepEqual(await paths("prefix=packages.needs"), ["packages.needs-broken", "packages.needs-ok"]);
      assert.deepEqual(await paths("prefix=packages."), ["packages.needs-broken", "packages.needs-ok", "packages.ok"]);
      assert.deepEqual(await paths("prefix=chec"), ["checks.bad", "checks.flaky"]);
      assert.deepEqual(await paths("prefix=packages.ok.x"), []);
      const first = await getJson(`/api/jobs/${jobId}/attributes?prefix=packages&limit=2`, AttributePage);
      assert.ok(first.cursor);
      const rest = await getJson(`/api/jobs/${jobId}/attributes?prefix=packages&limit=2&cursor=${first.cursor}`, AttributePage);
      assert.deepEqual(rest.attributes.map((a) => a.path.join(".")), ["packages.ok"]);
      assert.equal((await errorOf(`/api/jobs/${jobId}/attributes?prefix=checks&cursor=${first.cursor}`)).status, 400);
    });

    it("errors=only reads only the attributes that did not evaluate", async () => {
      const { attributes } = await getJson(`/api/jobs/${jobId}/attributes?errors=only`, AttributePage);
      assert.deepEqual(attributes, [{ path: ["checks", "bad"], status: "error", error: "error: attribute 'nope' missing" }]);
      assert.equal((await errorOf(`/api/jobs/${jobId}/attributes?errors=all`)).status, 400);
      assert.equal((await errorOf(`/api/jobs/${jobId}/attributes?prefix=${"x".repeat(1001)}`)).status, 400);
    });
  });

  describe("jobs by repository and branch", () => {
    it("lists one repository, one branch of it, newest first", async () => {
      const other = await push("acme/widgets", "3".repeat(40), "refs/heads/feature");
      const ids = async (query: string) => (await getJson(`/api/jobs?${query}`, JobList)).jobs.map((j) => j.id);
      assert.deepEqual(await ids("repository=acme/widgets"), [other, jobId]);
      assert.deepEqual(await ids(`repository=acme/widgets&ref=${encodeURIComponent("refs/heads/feature")}`), [other]);
      assert.deepEqual(await ids(`repository=acme/widgets&ref=${encodeURIComponent("refs/heads/main")}`), [jobId]);
      assert.deepEqual(await ids("repository=acme/none"), []);
      const paged = await getJson("/api/jobs?repository=acme/widgets&limit=1", JobList);
      assert.deepEqual((await getJson(`/api/jobs?repository=acme/widgets&limit=1&cursor=${paged.cursor}`, JobList)).jobs.map((j) => j.id), [jobId]);
      assert.equal((await errorOf(`/api/jobs?repository=acme/slow&limit=1&cursor=${paged.cursor}`)).status, 400);
      assert.match((await errorOf("/api/jobs?ref=refs/heads/main")).message, /ref needs repository/);
      assert.equal((await errorOf("/api/jobs?repository=acme/widgets&ref=main")).status, 400);
    });
  });

  describe("a long list by hash range", () => {
    it("splits into ranges whose pages, put together, are the whole list in order", async () => {
      const buckets = 7;
      const seen: string[] = [];
      for (let b = 0; b < buckets; b++) {
        const { from, to } = bucketRange(b, buckets);
        let cursor: string | undefined;
        do {
          const query = new URLSearchParams({ status: "failed", limit: "40", ...(from ? { from } : {}), ...(to ? { to } : {}), ...(cursor ? { cursor } : {}) });
          const page = await getJson(`/api/jobs/${seeded.jobId}/derivations?${query}`, DerivationPage);
          seen.push(...page.derivations.map((d) => d.drvPath));
          cursor = page.cursor;
        } while (cursor);
      }
      assert.deepEqual(seen, seeded.drvPaths);
    });

    it("without status, from the table, the same way", async () => {
      const { from, to } = bucketRange(3, 8);
      const page = await getJson(`/api/jobs/${seeded.jobId}/derivations?from=${from}&to=${to}&limit=200`, DerivationPage);
      const hash = (p: string) => p.slice("/nix/store/".length, "/nix/store/".length + 32);
      assert.deepEqual(page.derivations.map((d) => d.drvPath), seeded.drvPaths.filter((p) => hash(p) >= from! && hash(p) < to!));
    });

    it("refuses a bad range and a cursor from outside it, changing nothing", async () => {
      const base = `/api/jobs/${seeded.jobId}/derivations`;
      assert.match((await errorOf(`${base}?from=e000`)).message, /from must be 1–32 characters/);
      assert.equal((await errorOf(`${base}?to=${"0".repeat(33)}`)).status, 400);
      assert.equal((await errorOf(`${base}?from=h&to=g`)).status, 400);
      const first = await getJson(`${base}?status=failed&limit=5`, DerivationPage);
      assert.match((await errorOf(`${base}?status=failed&from=zz&cursor=${first.cursor}`)).message, /outside the from\/to range/);
    });
  });

  describe("a log by cursors", () => {
    const logPath = () => `/api/derivations/${encodeURIComponent(seeded.loggedDrv)}/log`;

    it("without parameters answers as before: the last 10,000 lines, nothing else", async () => {
      const plain = DerivationLog.parse(await (await get(logPath())).json());
      assert.equal(plain.lines.length, 10_000);
      assert.deepEqual(plain.lines, seeded.logLines.slice(-10_000));
      assert.equal(plain.truncated, true);
    });

    it("opens at the tail and pages back to the first line, each line once", async () => {
      const tail = await getJson(`${logPath()}?limit=2000`, LogPage);
      assert.equal(tail.attempt, 1);
      assert.equal(tail.building, undefined);
      assert.equal(tail.lines.at(-1), seeded.logLines.at(-1));
      assert.ok(tail.lines.length >= 2000 && tail.lines.length < 2400, `${tail.lines.length} lines: whole chunks, at most one more`);
      let lines = tail.lines;
      let page = tail;
      while (page.truncated) {
        page = await getJson(`${logPath()}?attempt=1&limit=2000&before=${page.start}`, LogPage);
        lines = [...page.lines, ...lines];
      }
      assert.deepEqual(lines, seeded.logLines);
      const nothingNew = await getJson(`${logPath()}?attempt=1&after=${tail.end}`, LogPage);
      assert.deepEqual([nothingNew.lines, nothingNew.end], [[], tail.end]);
    });

    it("refuses cursors it cannot read", async () => {
      for (const query of ["before=1&after=2&attempt=1", "before=3", "attempt=0", "limit=0", "limit=10001", "attempt=1&after=5000000", "attempt=x"]) {
        assert.equal((await errorOf(`${logPath()}?${query}`)).status, 400, query);
      }
    });

    it("follows a build: `after` the last cursor brings the lines printed since, `building` until it ends; the agent lists it", async () => {
      // The slow derivation was cancelled with its first job: this job builds it again, as attempt 2.
      await push("acme/slow", "4".repeat(40), "refs/heads/again");
      const path = `/api/derivations/${encodeURIComponent(SLOW)}/log`;
      const first = await eventually(async () => {
        const page = await getJson(`${path}?limit=2000`, LogPage);
        return page.building && page.lines.length > 1 ? page : undefined;
      }, "the slow build to print");
      assert.equal(first.attempt, 2);
      const { agents } = await getJson("/api/agents", AgentList);
      assert.equal(agents.length, 1);
      assert.ok(agents[0]!.sessionId);
      assert.deepEqual(
        agents[0]!.tasks!.map(({ kind, drvPath, attempt }) => ({ kind, drvPath, attempt })),
        [{ kind: "build", drvPath: SLOW, attempt: 2 }],
      );
      let end = first.end!;
      const lines = [...first.lines];
      let building = true;
      while (building) {
        await new Promise((r) => setTimeout(r, 300));
        const page = await getJson(`${path}?attempt=${first.attempt}&after=${end}`, LogPage);
        lines.push(...page.lines);
        end = page.end!;
        building = page.building ?? false;
      }
      const done = await getJson(`${path}?attempt=${first.attempt}&after=${end}`, LogPage);
      lines.push(...done.lines);
      assert.deepEqual(lines.slice(-40), Array.from({ length: 40 }, (_, i) => `slow ${i}`));
      assert.ok(first.lines.length < 40, "the first answer came while it built");
    });
  });

  describe("conditional GETs", () => {
    it("answer 304 with no body when the copy held is current", async () => {
      const path = `/api/jobs/${jobId}/summary`;
      const first = await get(path);
      const etag = first.headers.get("etag");
      assert.match(etag ?? "", /^W\/".+"$/);
      assert.equal(first.headers.get("cache-control"), "no-cache, private");
      const again = await get(path, { "if-none-match": etag! });
      assert.equal(again.status, 304);
      assert.equal(await again.text(), "");
      assert.equal((await get(path, { "if-none-match": 'W/"other"' })).status, 200);
    });
  });

  describe("sign-in", () => {
    const origin = () => stack.url;
    const newCode = async () => {
      const response = await fetch(`${stack.url}/api/dashboard/codes`, { method: "POST", headers: { authorization: `Bearer ${stack.adminToken}` } });
      assert.equal(response.status, 201);
      return SignInCode.parse(await response.json()).code;
    };
    const signIn = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${stack.url}/api/dashboard/sign-in`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: origin(), ...headers },
        body: JSON.stringify(body),
      });
    const cookieOf = (response: Response) => {
      const set = response.headers.get("set-cookie") ?? "";
      return { header: set, pair: set.split(";")[0]! };
    };
    const asPage = (cookie: string, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
      fetch(`${stack.url}${path}`, { ...init, headers: { cookie, ...init.headers } });

    it("trades a one-time code for an HttpOnly, SameSite=Strict session cookie, once", async () => {
      const code = await newCode();
      const response = await signIn({ code });
      assert.equal(response.status, 200);
      const session = DashboardSession.parse(await response.json());
      const { header, pair } = cookieOf(response);
      assert.match(header, /^nimbus_session=[\w-]{43}; Path=\/api; HttpOnly; SameSite=Strict; Max-Age=43200$/);
      assert.ok(!JSON.stringify(session).includes(pair.split("=")[1]!), "the page never sees the cookie's secret");

      const again = await signIn({ code });
      assert.equal(again.status, 401);
      assert.match(((await again.json()) as { error: { message: string } }).error.message, /used already or has expired/);
      assert.equal(again.headers.get("set-cookie"), null);

      const state = await (await asPage(pair, "/api/dashboard/session")).json();
      assert.deepEqual(state, { session });
      assert.equal((await asPage(pair, `/api/jobs/${jobId}/summary`)).status, 200);
      // Stored hashed: neither the code nor the cookie is in the table.
      const stored = JSON.stringify(await stack.scan("DashboardSessions"));
      assert.ok(!stored.includes(code) && !stored.includes(pair.split("=")[1]!));
    });

    it("refuses an expired code, a wrong token, another site's page and a body that is not JSON, storing nothing", async () => {
      const code = await newCode();
      const id = `code#${createHash("sha256").update(code).digest("hex")}`;
      await stack.setAttributes("DashboardSessions", { id }, { expiresAtEpoch: Math.floor(Date.now() / 1000) - 1 });
      const before = (await stack.scan("DashboardSessions")).length;
      assert.equal((await signIn({ code })).status, 401);
      assert.equal((await signIn({ token: "x".repeat(40) })).status, 401);
      const fresh = await newCode();
      assert.equal((await signIn({ code: fresh }, { origin: "https://evil.example" })).status, 403);
      const form = await fetch(`${stack.url}/api/dashboard/sign-in`, { method: "POST", headers: { "content-type": "text/plain", origin: origin() }, body: JSON.stringify({ code: fresh }) });
      assert.equal(form.status, 415);
      assert.equal((await signIn({ code: "short" })).status, 400);
      assert.equal((await stack.scan("DashboardSessions")).length, before + 1, "only the fresh code, still unused");
      assert.equal((await signIn({ code: fresh })).status, 200, "the refusals did not spend it");
    });

    it("acts with the cookie only from its own origin with the CSRF token; token routes stay bearer only", async () => {
      const response = await signIn({ token: stack.adminToken });
      assert.equal(response.status, 200);
      const { csrfToken } = DashboardSession.parse(await response.json());
      const { pair } = cookieOf(response);
      const jobs = async () => (await stack.scan("Jobs")).length;
      const count = await jobs();
      const rerun = (headers: Record<string, string>) => asPage(pair, `/api/jobs/${jobId}/rerun`, { method: "POST", headers });

      const noHeader = await rerun({ origin: origin() });
      assert.equal(noHeader.status, 403);
      assert.equal(((await noHeader.json()) as { error: { code: string } }).error.code, "csrf");
      assert.equal((await rerun({ origin: "https://evil.example", "x-nimbus-csrf": csrfToken })).status, 403);
      assert.equal((await rerun({ "x-nimbus-csrf": csrfToken })).status, 403, "no Origin");
      assert.equal((await rerun({ origin: origin(), "x-nimbus-csrf": "wrong" })).status, 403);
      assert.equal(await jobs(), count, "nothing was rerun");
      assert.equal((await rerun({ origin: origin(), "x-nimbus-csrf": csrfToken })).status, 201);
      assert.equal(await jobs(), count + 1);

      assert.equal((await asPage(pair, "/api/tokens")).status, 401);
      assert.equal((await asPage(pair, "/api/dashboard/codes", { method: "POST", headers: { origin: origin(), "x-nimbus-csrf": csrfToken } })).status, 401);
    });

    it("signs out: the session is deleted and the cookie cleared", async () => {
      const response = await signIn({ code: await newCode() });
      const { csrfToken } = DashboardSession.parse(await response.json());
      const { pair } = cookieOf(response);
      const out = await asPage(pair, "/api/dashboard/sign-out", { method: "POST", headers: { origin: origin(), "x-nimbus-csrf": csrfToken } });
      assert.equal(out.status, 200);
      assert.match(out.headers.get("set-cookie") ?? "", /^nimbus_session=; Path=\/api; HttpOnly; SameSite=Strict; Max-Age=0$/);
      assert.equal((await asPage(pair, "/api/jobs")).status, 401);
      assert.deepEqual(await (await asPage(pair, "/api/dashboard/session")).json(), { session: null });
    });
  });
});
