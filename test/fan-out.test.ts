/**
 * Fan-out in pages (docs/architecture.md, "Fan-out in pages"), through the real stack: a settle
 * tells its first page of dependents itself and the rest goes on through the FanOut queue, a
 * page per message; a big job's cancellation likewise. Every SQS message is delivered twice
 * here (the chaos runs' duplicate-message fault), so every page is handled twice: each
 * dependent must still move exactly once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseEdgePosition } from "@nimbus/core";
import { importHandlerFrom, type LambdaHandler } from "@nimbus/local";
import type { SQSEvent } from "aws-lambda";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { attribute, derivation, drv, jobWhere, push } from "./support/graph-events.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

/** Small pages, so a few hundred dependents make many of them. */
const PAGE = 20;
const DEPENDENTS = 300;
const FAN_OUT_HANDLER = "functions/queues/fan-out.handler";

type Page = { type: "settle"; drvPath: string; version: number; after?: string } | { type: "cancel"; jobId: string; after?: string };

describe("fan-out in pages through the FanOut queue, every page delivered twice", () => {
  let stack: TestStack;
  let token: string;
  const agents: ScriptedAgent[] = [];
  /** Every FanOut message the consumer was handed, in order. */
  const pages: Page[] = [];
  let script: ScriptedAgent["script"];

  // Sorted as the Edges and JobDerivations tables sort them (by .drv path), so the page boundaries are known.
  const names = (prefix: string) => Array.from({ length: DEPENDENTS }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`).sort((a, b) => drv(a).localeCompare(drv(b)));
  const items = async (prefix: string) => (await stack.scan("Derivations")).filter((d) => String(d.drvPath).includes(`-${prefix}-`));
  const movesTo = (item: Record<string, any>, status: string) => (item.history as { status: string }[]).filter((h) => h.status === status).length;

  before(async () => {
    const resolve = importHandlerFrom();
    stack = await startTestStack({
      sweepIntervalMs: 0,
      environment: { NIMBUS_FAN_OUT_PAGE: String(PAGE) },
      faults: { duplicateMessage: 1, seed: 11 },
      resolveHandler: async (spec): Promise<LambdaHandler> => {
        const handler = await resolve(spec);
        if (spec !== FAN_OUT_HANDLER) return handler;
        return (event: SQSEvent, context) => {
          for (const record of event.Records) pages.push(JSON.parse(record.body) as Page);
          return handler(event, context);
        };
      },
    });
    token = (await stack.createToken("fan-out")).token;
    // Evaluates, and builds nothing: the hub (x86_64-linux) waits for the builder below; the dependents are
    // riscv64-linux, which no agent builds, so they stay queued.
    script = {
      evaluate: (task) => {
        const prefix = task.repository.split("/")[1]!;
        const hub = prefix === "hub" ? [derivation("the-root"), attribute("the-root")] : [];
        return [
          ...names(prefix).flatMap((name) => [derivation(name, prefix === "hub" ? ["the-root"] : [], { system: "riscv64-linux" }), attribute(name)]),
          ...hub,
        ];
      },
      batchSize: 200,
    };
    const agent = ScriptedAgent.create("evaluator", { systems: ["powerpc64le-linux"], concurrentTasks: 2 }, script);
    agents.push(agent);
    await agent.connect(stack.agentSocketUrl, token);
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await stack?.cleanup();
  });

  it("a settle tells its first page itself and the rest a page per FanOut message; each dependent is queued exactly once", async () => {
    const jobId = await push(stack, "acme/hub");
    // Every dependent's edge is in before the hub can build (batches are ingested side by side).
    await jobWhere(stack, jobId, (job) => job.evaluation.status === "succeeded", "the evaluation", 60_000);
    // It may evaluate the next job too: the same script.
    const builder = ScriptedAgent.create("builder", { systems: ["x86_64-linux"], concurrentTasks: 2 }, script);
    agents.push(builder);
    await builder.connect(stack.agentSocketUrl, token);
    await eventually(async () => ((await items("hub")).filter((d) => d.status === "queued").length === DEPENDENTS ? true : undefined), "every dependent to be queued", 60_000);
    await jobWhere(stack, jobId, (job) => job.counts.queued === DEPENDENTS && job.counts.succeeded === 1, "the job's counts to show them");

    for (const item of await items("hub")) {
      assert.equal(item.status, "queued", String(item.drvPath));
      assert.equal(movesTo(item, "queued"), 1, `${item.drvPath} moved to queued once: ${JSON.stringify(item.history)}`);
    }
    const hub = (await stack.scan("Derivations")).find((d) => d.drvPath === drv("the-root"))!;
    assert.equal(hub.status, "succeeded");
    await eventually(async () => ((await stack.scan("Derivations")).find((d) => d.drvPath === drv("the-root"))?.propagateShard === undefined ? true : undefined), "the hub to be propagated");

    // The hub's edges are a row per evaluation batch (storage/derivation-edges.ts), not one per dependent.
    const rows = (await stack.scan("Edges")).filter((e) => e.inputDrv === drv("the-root")).sort((a, b) => (String(a.dependentDrv) < String(b.dependentDrv) ? -1 : 1));
    const rowSize = (row: Record<string, unknown>) => ((row.dependents as string[] | undefined) ?? [row.dependentDrv]).length;
    assert.equal(rows.reduce((n, row) => n + rowSize(row), 0), DEPENDENTS);
    assert.ok(rows.length <= 3, `${rows.length} rows for ${DEPENDENTS} dependents in 3 batches`);
    /** How many dependents come before a page's position (a row's key, or a row's key and how many of it were told). */
    const toldBefore = (after: string) => {
      const position = parseEdgePosition(after)!;
      let told = 0;
      for (const row of rows) {
        if (row.dependentDrv === position.key) return told + (position.told ?? rowSize(row));
        told += rowSize(row);
      }
      assert.fail(`a continuation after ${JSON.stringify(after)}, which is no row of the hub's`);
    };

    // The build-result told the first page itself; every later page was one FanOut message's, going on after a full page.
    const settlePages = () => pages.filter((p): p is Extract<Page, { type: "settle" }> => p.type === "settle" && p.drvPath === drv("the-root"));
    // One invocation per page: 14 more full pages (the last ends it).
    const continuations = DEPENDENTS / PAGE - 1;
    await eventually(async () => (new Set(settlePages().map((p) => p.after)).size >= continuations ? true : undefined), "a FanOut invocation per page");
    const afters = settlePages().map((p) => p.after);
    assert.equal(toldBefore(afters[0]!), PAGE, "the first continuation starts after the first page");
    for (const after of afters) assert.ok(after !== undefined && toldBefore(after) % PAGE === 0, `a continuation after ${after}, not after a full page`);
    assert.deepEqual([...new Set(afters.map((after) => toldBefore(after!)))].sort((a, b) => a - b), Array.from({ length: continuations }, (_, i) => (i + 1) * PAGE), "a continuation after each full page");
    assert.ok(afters.length > new Set(afters).size, "some page message was delivered twice");
  });

  it("a cancel of a big job goes on a page per FanOut message; each derivation is cancelled once and the job's counts are exact", async () => {
    const jobId = await push(stack, "acme/big", "b".repeat(40));
    await jobWhere(stack, jobId, (job) => job.counts.queued === DEPENDENTS, "every derivation to be queued", 60_000);
    const answer = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.deepEqual([answer.status, answer.body], [200, { id: jobId, status: "cancelled", complete: false }]);

    const done = await jobWhere(stack, jobId, (job) => job.counts.cancelled === DEPENDENTS, "every derivation to be counted cancelled", 60_000);
    assert.deepEqual(done.counts, { cancelled: DEPENDENTS });
    for (const item of await items("big")) {
      assert.equal(item.status, "cancelled", String(item.drvPath));
      assert.equal(movesTo(item, "cancelled"), 1, `${item.drvPath} moved to cancelled once`);
    }
    // The API call acted on the first page, one FanOut invocation on each of the others, going on after a page's last row.
    const rows = names("big").map(drv);
    const boundaries = rows.filter((_, i) => (i + 1) % PAGE === 0);
    const cancelPages = () => pages.filter((p): p is Extract<Page, { type: "cancel" }> => p.type === "cancel" && p.jobId === jobId);
    await eventually(async () => (cancelPages().length >= DEPENDENTS / PAGE - 1 ? true : undefined), "a FanOut invocation per page");
    const afters = cancelPages().map((p) => p.after);
    assert.equal(afters[0], boundaries[0], "the first continuation starts after the first page");
    for (const after of afters) assert.ok(after !== undefined && boundaries.includes(after), `a continuation after ${after}, not after a page's last row`);
    assert.ok(afters.length > new Set(afters).size, "some page message was delivered twice");
    const again = await stack.api("POST", `/api/jobs/${jobId}/cancel`);
    assert.deepEqual(again.body, { id: jobId, status: "cancelled", complete: true });
  });
});
