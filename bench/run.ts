/**
 * `npm run bench [scenario…]`: the scenarios of docs/scale.md, each in a process of its own
 * (bench/scenario.ts) against a fresh local stack — `saturated` (a 2,000-derivation job built
 * by 8 protocol-level agents that answer at once), `idle` (a trickle of ready work with free
 * slots), `ingest` (a nixpkgs-like evaluation vs a bare BatchWriteItem loop), `agents1000`
 * (requests for one dispatch and one wake at 10 and 1,000 agents) and `realnix` (real Nix
 * builds by 4 agents vs `xargs -P4 nix-store --realise`); `nixpkgs` (a whole nixpkgs-shaped job,
 * only when named). It prints a table beside issue #11's
 * targets and writes bench/results/latest.json; it never asserts speed.
 *
 * Scenarios: names as arguments or NIMBUS_BENCH_SCENARIOS (default: all but nixpkgs). Sizes: the
 * NIMBUS_BENCH_* variables of bench/bench-options.ts (README.md, docs/scale.md).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BenchOptionsError, parseBenchOptions, type BenchOptions, type ScenarioName } from "./bench-options.ts";
import { AWS_PRICES, costPer, roundCost } from "./cost-model.ts";
import { machineInfo, printReport, writeResults } from "./report.ts";
import type { AgentsAtSize } from "./scenario-agents.ts";
import type { IngestResult } from "./scenario-ingest.ts";
import type { JobScenarioResult } from "./scenario-job.ts";
import type { NixpkgsResult } from "./scenario-nixpkgs.ts";
import type { RealNixResult } from "./scenario-real-nix.ts";
import { round } from "./stats.ts";
import { summaryRows, summaryTable, type Headline } from "./summary-table.ts";
import { ASSUMED_AWS_CALL_MS, ASSUMED_LAMBDA_OVERHEAD_MS, LAMBDA_MEMORY_MB, usageOf } from "./usage.ts";

const SCENARIO_SCRIPT = fileURLToPath(new URL("./scenario.ts", import.meta.url));

/** Runs `scenario.ts name [size]` in a child process; its output goes straight to ours. */
async function runChild<T>(dir: string, name: ScenarioName, size?: number): Promise<T> {
  const resultFile = join(dir, `${name}${size === undefined ? "" : `-${size}`}.json`);
  const args = ["--disable-warning=ExperimentalWarning", "--import", "tsx", SCENARIO_SCRIPT, name, ...(size === undefined ? [] : [String(size)])];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: "inherit", env: { ...process.env, NIMBUS_BENCH_RESULT_FILE: resultFile } });
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0) throw new Error(`scenario ${name}${size === undefined ? "" : ` (${size} agents)`} exited ${code} (its output is above)`);
  return JSON.parse(await readFile(resultFile, "utf8")) as T;
}

interface Collected {
  saturated?: JobScenarioResult;
  idle?: JobScenarioResult;
  ingest?: IngestResult;
  agents?: AgentsAtSize[];
  realNix?: RealNixResult;
  nixpkgs?: NixpkgsResult;
}

function costFrom(run: { builds: number; requests: JobScenarioResult["requests"]; connectionSeconds: number } | undefined, label: string) {
  if (!run || run.builds === 0) return null;
  const usage = usageOf(run);
  return {
    from: `the ${label} scenario`,
    ...roundCost(costPer(1000, usage)),
    usagePerBuild: Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, k === "builds" || k === "lambdaMemoryMb" ? v : round(v / usage.builds, 3)])),
    /** For comparison only: the handlers' mean wall time here (emulators on a shared machine). */
    localHandlerMeanMs: run.requests.handlerMs.mean,
    prices: AWS_PRICES,
    assumptions: [
      "DynamoDB units are what the emulator reported per request (ReturnConsumedCapacity TOTAL), each global secondary index write among them as AWS bills it (packages/local/src/index-capacity.mjs: an entry put or deleted one write, a key changed two, a projected attribute changed one, in 1 KB units of the entry).",
      "Each SQS request is one billed FIFO request (messages are far below 64 KB).",
      "Gateway messages: one per PostToConnection the handlers made plus one per agent frame; all far below the 32 KB metering step.",
      `Lambda: every counted handler invocation (not the JSON API the bench polls), arm64 at ${LAMBDA_MEMORY_MB} MB; duration assumed, not measured: ${ASSUMED_LAMBDA_OVERHEAD_MS} ms per invocation plus ${ASSUMED_AWS_CALL_MS} ms per AWS request it makes (local wall time is the emulators', on a shared machine).`,
      "Connection minutes: the run's agents × its duration; a real fleet's connection minutes depend on how long agents stay connected, not on builds (docs/scale.md).",
      "Free tiers, storage, data transfer, CloudWatch logs and the sweeper's schedule are left out.",
    ],
  };
}

const jobRun = (run: JobScenarioResult | undefined) =>
  run && { builds: run.result.builds, requests: run.requests, connectionSeconds: run.connectionSeconds };

/** Real agents send more frames per build (logs, progress) than the protocol-level ones: the same model on the realnix run. */
const realNixRun = (run: RealNixResult | undefined) =>
  run && { builds: run.n, requests: run.requests, connectionSeconds: run.agents * run.wallSeconds };

function headlineOf(c: Collected, sizes: number[]): Headline {
  const s = c.saturated?.result;
  const idle = c.idle?.result;
  const cost = costFrom(jobRun(c.saturated), "saturated") ?? costFrom(jobRun(c.idle), "idle");
  return {
    buildsPerSecond: s ? s.buildsPerSecond : null,
    requestsPerBuild: s ? s.requestsPerBuild : null,
    dispatchLatencyMs: s ? { p50: s.dispatchLatencyMs.p50, p95: s.dispatchLatencyMs.p95 } : null,
    idleDispatchLatencyMs: idle ? { p50: idle.dispatchLatencyMs.p50, p95: idle.dispatchLatencyMs.p95 } : null,
    ingest: c.ingest
      ? { derivations: c.ingest.derivations, seconds: c.ingest.seconds, eventsPerSecond: c.ingest.eventsPerSecond, floorEventsPerSecond: c.ingest.floorEventsPerSecond }
      : null,
    agents1000: c.agents
      ? {
          sizes,
          dispatchRequests: Object.fromEntries(c.agents.map((a) => [String(a.agents), a.dispatchRequests])),
          wakeRequests: Object.fromEntries(c.agents.map((a) => [String(a.agents), a.wakeRequests])),
          wakeReadUnits: Object.fromEntries(c.agents.map((a) => [String(a.agents), a.wakeReadUnits])),
        }
      : null,
    realNix: c.realNix
      ? { n: c.realNix.n, wallSeconds: c.realNix.wallSeconds, floorSeconds: c.realNix.floorSeconds, serveFloorSeconds: c.realNix.serveFloorSeconds }
      : null,
    costPer1000BuildsUsd: cost,
    nixpkgs: c.nixpkgs
      ? {
          derivations: c.nixpkgs.result.derivations,
          seconds: round(c.nixpkgs.result.timeline.webhookToJobFinishedMs / 1000, 1),
          buildsPerSecond: c.nixpkgs.result.buildsPerSecond,
          requestsPerBuild: c.nixpkgs.result.requestsPerBuild.total,
          anomalies: c.nixpkgs.result.checks.anomalies.length,
        }
      : null,
  };
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof BenchOptionsError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  const started = Date.now();
  console.log(`Nimbus benchmark: ${options.scenarios.join(", ")} (seed ${options.seed}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")})\n`);
  const dir = await mkdtemp(join(os.tmpdir(), "nimbus-bench-results-"));
  const collected: Collected = {};
  const failures: Record<string, string> = {};
  const seconds: Record<string, number> = {};
  try {
    for (const name of options.scenarios) {
      const at = Date.now();
      try {
        if (name === "saturated") {
          collected.saturated = await runChild<JobScenarioResult>(dir, name);
          printReport({ ...collected.saturated.result, wallSeconds: round((Date.now() - at) / 1000) }, collected.saturated.requests);
        } else if (name === "idle") {
          collected.idle = await runChild<JobScenarioResult>(dir, name);
          const r = collected.idle.result;
          console.log(
            `  idle: ${r.builds} builds; ready → dispatched p50 ${r.dispatchLatencyMs.p50} ms, p95 ${r.dispatchLatencyMs.p95} ms; ` +
              `main thread ${Math.round(collected.idle.mainThreadBusy * 100)} % busy; ` +
              `${r.requestsPerBuild.total} requests per build${r.checks.anomalies.length ? `; WARNING: ${r.checks.anomalies.join("; ")}` : ""}`,
          );
        } else if (name === "ingest") {
          collected.ingest = await runChild<IngestResult>(dir, name);
          const g = collected.ingest;
          console.log(`  ingest: ${g.events} events in ${g.seconds} s → ${g.eventsPerSecond}/s; floor ${g.floorEventsPerSecond}/s; ${g.requestsPerEvent.total} requests per event; CPU ${g.cpu.seconds} s vs the floor's ${g.cpu.floorSeconds} s (${Math.round(g.cpu.ofFloor * 100)}% of its speed)`);
        } else if (name === "agents1000") {
          const bySize: AgentsAtSize[] = [];
          for (const size of options.agents.sizes) {
            const a = await runChild<AgentsAtSize>(dir, name, size);
            bySize.push(a);
            console.log(
              `  ${size} agents: connected in ${a.connectSeconds} s; requests (DynamoDB read units): dispatch ${a.dispatchRequests} (${a.dispatchReadUnits}), ` +
                `wake ${a.wakeRequests} (${a.wakeReadUnits}), ready → dispatched ${a.readyToDispatchedRequests} (${a.readyToDispatchedReadUnits})`,
            );
          }
          collected.agents = bySize;
        } else if (name === "realnix") {
          collected.realNix = await runChild<RealNixResult>(dir, name);
        } else if (name === "nixpkgs") {
          collected.nixpkgs = await runChild<NixpkgsResult>(dir, name);
          printReport({ ...collected.nixpkgs.result, wallSeconds: round((Date.now() - at) / 1000) }, collected.nixpkgs.requests);
        }
      } catch (error) {
        failures[name] = error instanceof Error ? error.message : String(error);
        console.error(`  ${name} failed: ${failures[name]}`);
      }
      seconds[name] = round((Date.now() - at) / 1000, 1);
      console.log("");
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const headline = headlineOf(collected, options.agents.sizes);
  console.log(summaryTable(headline));
  const output = {
    timestamp: new Date().toISOString(),
    completed: Object.keys(failures).length === 0,
    scenarios: options.scenarios,
    failures,
    ...headline,
    ingest: collected.ingest ? { ...headline.ingest, ...collected.ingest, requests: undefined } : null,
    agents1000: collected.agents ? { ...headline.agents1000, bySize: collected.agents } : null,
    realNix: collected.realNix ? { ...collected.realNix, requests: undefined, costPer1000BuildsUsd: costFrom(realNixRun(collected.realNix), "realnix") } : null,
    targets: summaryRows(headline),
    saturated: collected.saturated ? { ...collected.saturated.result, mainThreadBusy: round(collected.saturated.mainThreadBusy, 2) } : null,
    idle: collected.idle ? { ...collected.idle.result, mainThreadBusy: round(collected.idle.mainThreadBusy, 2) } : null,
    nixpkgs: collected.nixpkgs ? { ...collected.nixpkgs.result, shape: collected.nixpkgs.shape, mainThreadBusy: round(collected.nixpkgs.mainThreadBusy, 2) } : null,
    ingestRequests: collected.ingest?.requests ?? null,
    realNixRequests: collected.realNix?.requests ?? null,
    scenarioSeconds: seconds,
    wallSeconds: round((Date.now() - started) / 1000),
    machine: { ...machineInfo(), loadAverage: os.loadavg().map((l) => round(l, 2)) },
    options,
  };
  await writeResults(output);
  return 0; // a benchmark reports: failures are printed and written, not fatal
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
