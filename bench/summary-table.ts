/**
 * The bench's summary: the headline figures of bench/results/latest.json beside issue #11's
 * targets, and a plain-text table of them. Pure (docs/scale.md shows a printed one).
 */

export interface Headline {
  buildsPerSecond: number | null;
  requestsPerBuild: { dynamodb: number; sqs: number; gateway: number; total: number } | null;
  dispatchLatencyMs: { p50: number; p95: number } | null;
  idleDispatchLatencyMs: { p50: number; p95: number } | null;
  ingest: { derivations: number; seconds: number; eventsPerSecond: number; floorEventsPerSecond: number } | null;
  agents1000: {
    sizes: number[];
    dispatchRequests: Record<string, number>;
    wakeRequests: Record<string, number>;
    /** DynamoDB read units of one wake: flat requests can hide a Scan whose units grow with the fleet. */
    wakeReadUnits?: Record<string, number>;
  } | null;
  realNix: { n: number; wallSeconds: number; floorSeconds: number; serveFloorSeconds?: number } | null;
  costPer1000BuildsUsd: { total: number } | null;
  /** A whole nixpkgs-shaped job, when that scenario ran (not in the default set). */
  nixpkgs?: { derivations: number; seconds: number; buildsPerSecond: number; requestsPerBuild: number; anomalies: number } | null;
}

export interface SummaryRow {
  scenario: string;
  measure: string;
  value: string;
  target: string;
  /** Whether the target is met; null when there is no target or nothing was measured. */
  met: boolean | null;
}

const NOT_RUN = "(not run)";

/** Flat means no more at the largest size than at the smallest. */
export function isFlat(bySize: Record<string, number>, sizes: readonly number[]): boolean | null {
  if (sizes.length < 2) return null;
  const values = [...sizes].sort((a, b) => a - b).map((s) => bySize[String(s)]);
  if (values.some((v) => v === undefined)) return null;
  return values.at(-1)! <= values[0]!;
}

const series = (bySize: Record<string, number>, sizes: readonly number[]) =>
  [...sizes].sort((a, b) => a - b).map((s) => `${bySize[String(s)] ?? "?"} @${s}`).join(" → ");

export function summaryRows(h: Headline): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const r = h.requestsPerBuild;
  rows.push({ scenario: "saturated", measure: "builds per second", value: h.buildsPerSecond === null ? NOT_RUN : String(h.buildsPerSecond), target: "", met: null });
  rows.push({
    scenario: "saturated",
    measure: "AWS requests per build (DynamoDB + SQS + gateway)",
    value: r ? `${r.total} (${r.dynamodb} + ${r.sqs} + ${r.gateway})` : NOT_RUN,
    target: "≤ 5",
    met: r ? r.total <= 5 : null,
  });
  const d = h.dispatchLatencyMs;
  rows.push({ scenario: "saturated", measure: "ready → dispatched p50 / p95 (ms)", value: d ? `${d.p50} / ${d.p95}` : NOT_RUN, target: "", met: null });
  const i = h.idleDispatchLatencyMs;
  rows.push({ scenario: "idle", measure: "ready → dispatched p50 / p95 (ms)", value: i ? `${i.p50} / ${i.p95}` : NOT_RUN, target: "p95 ≤ 50", met: i ? i.p95 <= 50 : null });
  const g = h.ingest;
  const share = g ? g.eventsPerSecond / g.floorEventsPerSecond : null;
  rows.push({
    scenario: "ingest",
    measure: g ? `events/s of ${g.derivations} derivations vs BatchWriteItem floor` : "events/s vs BatchWriteItem floor",
    value: g ? `${g.eventsPerSecond} vs ${g.floorEventsPerSecond} (${Math.round(share! * 100)}%, ${g.seconds} s)` : NOT_RUN,
    target: "≥ 50% at 100,000",
    met: g ? share! >= 0.5 && g.derivations >= 100_000 : null,
  });
  const a = h.agents1000;
  rows.push({
    scenario: "agents1000",
    measure: "requests for one dispatch",
    value: a ? series(a.dispatchRequests, a.sizes) : NOT_RUN,
    target: "flat",
    met: a ? isFlat(a.dispatchRequests, a.sizes) : null,
  });
  rows.push({
    scenario: "agents1000",
    measure: "requests for one wake",
    value: a ? series(a.wakeRequests, a.sizes) : NOT_RUN,
    target: "flat",
    met: a ? isFlat(a.wakeRequests, a.sizes) : null,
  });
  if (a?.wakeReadUnits) {
    rows.push({
      scenario: "agents1000",
      measure: "DynamoDB read units for one wake",
      value: series(a.wakeReadUnits, a.sizes),
      target: "flat (no Scan)",
      met: isFlat(a.wakeReadUnits, a.sizes),
    });
  }
  const n = h.realNix;
  const ratio = n ? n.wallSeconds / n.floorSeconds : null;
  rows.push({
    scenario: "realnix",
    measure: n ? `wall of ${n.n} builds vs xargs -P4 nix-store --realise (s)` : "wall vs xargs -P4 nix-store --realise",
    value: n ? `${n.wallSeconds} vs ${n.floorSeconds} (${ratio!.toFixed(2)}×)` : NOT_RUN,
    target: "≤ 1.5×",
    met: n ? ratio! <= 1.5 : null,
  });
  // The agents build through nix-store --serve --write: Nimbus's coordination over those same builds (docs/scale.md).
  if (n?.serveFloorSeconds !== undefined) {
    rows.push({
      scenario: "realnix",
      measure: `wall of ${n.n} builds vs the same builds through nix-store --serve (s)`,
      value: `${n.wallSeconds} vs ${n.serveFloorSeconds} (${(n.wallSeconds / n.serveFloorSeconds).toFixed(2)}×)`,
      target: "",
      met: null,
    });
  }
  const x = h.nixpkgs;
  if (x) {
    rows.push({
      scenario: "nixpkgs",
      measure: `a job of ${x.derivations} nixpkgs-shaped derivations: webhook → verdict (s), builds/s, requests per build`,
      value: `${x.seconds} s, ${x.buildsPerSecond}/s, ${x.requestsPerBuild}${x.anomalies ? ` (${x.anomalies} anomalies)` : ""}`,
      target: "100,000, each built once",
      met: x.derivations >= 100_000 ? x.anomalies === 0 : null,
    });
  }
  const c = h.costPer1000BuildsUsd;
  rows.push({ scenario: "cost", measure: "AWS USD per 1,000 builds (us-east-1, on-demand)", value: c ? `$${c.total.toFixed(4)}` : NOT_RUN, target: "", met: null });
  return rows;
}

/** Columns padded to their widest cell, a rule under the header. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, c) => Math.max([...h].length, ...rows.map((row) => [...(row[c] ?? "")].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => cell + " ".repeat(widths[c]! - [...cell].length))
      .join("  ")
      .trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function summaryTable(h: Headline): string {
  const mark = (met: boolean | null) => (met === null ? "" : met ? "yes" : "NO");
  return formatTable(
    ["scenario", "measure", "measured", "#11 target", "met"],
    summaryRows(h).map((r) => [r.scenario, r.measure, r.value, r.target, mark(r.met)]),
  );
}
