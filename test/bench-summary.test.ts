import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { percentile, summarize } from "../bench/stats.ts";
import { formatTable, isFlat, summaryRows, summaryTable, type Headline } from "../bench/summary-table.ts";

const nothing: Headline = {
  buildsPerSecond: null,
  requestsPerBuild: null,
  dispatchLatencyMs: null,
  idleDispatchLatencyMs: null,
  ingest: null,
  agents1000: null,
  realNix: null,
  costPer1000BuildsUsd: null,
};

const measured: Headline = {
  buildsPerSecond: 23,
  requestsPerBuild: { dynamodb: 3, sqs: 1.5, gateway: 0.5, total: 5 },
  dispatchLatencyMs: { p50: 100, p95: 900 },
  idleDispatchLatencyMs: { p50: 20, p95: 51 },
  ingest: { derivations: 100_000, seconds: 100, eventsPerSecond: 1500, floorEventsPerSecond: 3000 },
  agents1000: { sizes: [1000, 10], dispatchRequests: { "10": 5, "1000": 5 }, wakeRequests: { "10": 20, "1000": 21 } },
  realNix: { n: 1000, wallSeconds: 30, floorSeconds: 20 },
  costPer1000BuildsUsd: { total: 0.04 },
};

describe("bench statistics", () => {
  it("takes nearest-rank percentiles", () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(sorted, 50), 50);
    assert.equal(percentile(sorted, 95), 95);
    assert.equal(percentile(sorted, 100), 100);
    assert.equal(percentile([7], 95), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it("summarizes unsorted samples", () => {
    const s = summarize([5, 1, 3, 2, 4]);
    assert.deepEqual([s.count, s.p50, s.max, s.mean], [5, 3, 5, 3]);
  });
});

describe("bench summary table", () => {
  it("pads every column to its widest cell, with a rule under the header", () => {
    const table = formatTable(["a", "bb"], [["ccc", "d"], ["e", "ffff"]]);
    assert.deepEqual(table.split("\n"), ["a    bb", "---  ----", "ccc  d", "e    ffff"]);
  });

  it("measures cell width in characters, not UTF-16 units or bytes", () => {
    const table = formatTable(["x", "y"], [["≤ 5", "→"]]);
    assert.equal(table.split("\n")[2], "≤ 5  →");
  });

  it("judges each of #11's targets on the measured figures", () => {
    const met = Object.fromEntries(summaryRows(measured).map((r) => [`${r.scenario} ${r.measure.split(" ")[0]}`, r.met]));
    assert.equal(met["saturated AWS"], true, "5 requests per build meets ≤ 5");
    assert.equal(met["idle ready"], false, "p95 51 ms misses ≤ 50");
    assert.equal(met["ingest events/s"], true, "half the floor at 100,000 meets it");
    assert.equal(met["realnix wall"], true, "1.5× meets ≤ 1.5×");
  });

  it("does not call the ingest target met below 100,000 derivations", () => {
    const small = { ...measured, ingest: { ...measured.ingest!, derivations: 5000 } };
    assert.equal(summaryRows(small).find((r) => r.scenario === "ingest")?.met, false);
  });

  it("shows per-size requests in ascending size and calls them flat only when the largest costs no more", () => {
    const rows = summaryRows(measured).filter((r) => r.scenario === "agents1000");
    assert.equal(rows[0]?.value, "5 @10 → 5 @1000");
    assert.equal(rows[0]?.met, true);
    assert.equal(rows[1]?.met, false, "one more request at 1,000 agents is growth");
    assert.equal(isFlat({ "10": 3 }, [10]), null, "one size says nothing about growth");
    assert.equal(isFlat({ "10": 3 }, [10, 1000]), null, "a missing size says nothing either");
  });

  it("shows a nixpkgs-shaped job only when it ran, judged at 100,000 derivations by its checks", () => {
    assert.ok(!summaryRows(measured).some((r) => r.scenario === "nixpkgs"));
    const row = (nixpkgs: Headline["nixpkgs"]) => summaryRows({ ...measured, nixpkgs }).find((r) => r.scenario === "nixpkgs");
    const whole = { derivations: 100_000, seconds: 2400, buildsPerSecond: 42, requestsPerBuild: 15.5, anomalies: 0 };
    assert.equal(row(whole)?.value, "2400 s, 42/s, 15.5");
    assert.equal(row(whole)?.met, true);
    assert.equal(row({ ...whole, anomalies: 2 })?.met, false, "a job that built something twice, or ended with wrong counts, is not a nixpkgs build");
    assert.equal(row({ ...whole, derivations: 10_000 })?.met, null, "a smaller job says nothing of 100,000");
  });

  it("marks scenarios that did not run instead of judging them", () => {
    const rows = summaryRows(nothing);
    assert.ok(rows.every((r) => r.value === "(not run)" && r.met === null));
    assert.ok(!summaryTable(nothing).includes("NO"));
  });
});

describe("bench summary of agent scale", () => {
  it("judges a wake's read units too, so a Scan that grows with the fleet shows", () => {
    const rows = summaryRows({ ...measured, agents1000: { ...measured.agents1000!, wakeReadUnits: { "10": 3, "1000": 250 } } });
    const units = rows.find((r) => r.measure === "DynamoDB read units for one wake");
    assert.equal(units?.value, "3 @10 → 250 @1000");
    assert.equal(units?.met, false);
  });
});
