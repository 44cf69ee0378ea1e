/**
 * `npm test`: every test file, in two runs of Node's test runner (spec reporter, one after the
 * other, the second even when the first failed; exit 1 if either failed):
 *  1. files that start no local stack, agent fleet, browser or timed flow — the packages' unit
 *     tests and the offline checks named below — two files at a time;
 *  2. the flows of test/, two files at a time: they start stacks, agents, real Nix builds and
 *     Chromium. Each flow picks its own ports, directories and store paths. One at a time they
 *     used 1.1 of the 2 cores (600 s of wall, 650 s of CPU): many wait on timers (a disconnect
 *     grace, a browser); two at a time took 450 s. On 2026-12-02 (57 flows, about 900 s of CPU)
 *     clean-clone runs of the flows took 548 and 644 s two at a time, 543 s three at a time (and
 *     484 s in a quiet local run): within the runs' noise, with each test slower by most of what
 *     the third file gained — the 2 cores are the limit — so two stay, the order with a record.
 * A new file under test/ is a flow unless it is named here.
 * Node's runner starts the files of a run in sorted order, whatever order they are given in; each
 * run's longest files are given as absolute paths, which sort first (LONG_FILES).
 * Arguments (e.g. `--test-name-pattern=...`) are passed to both runs.
 */
import { spawnSync } from "node:child_process";
import { globSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Files under test/ that start no stack, agent, browser or Nix build: they may run beside others. */
const OFFLINE_CHECKS_IN_TEST = [
  "test/infra.test.ts",
  "test/infra-typecheck.test.ts",
  "test/agent-package.test.ts",
  "test/architecture.test.ts",
  "test/bench-cost-model.test.ts",
  "test/bench-nixpkgs-graph.test.ts",
  "test/bench-options.test.ts",
  "test/bench-real-nix-breakdown.test.ts",
  "test/bench-request-counter.test.ts",
  "test/bench-summary.test.ts",
  "test/bench-workload.test.ts",
  "test/handler-secrets.test.ts",
];

/**
 * Each run's longest files, started first so that no lane is left with one of them at the end:
 * infra.test.ts sorted last of all and ran alone for about a minute at the end of the first run;
 * its type-check, whose `sst install` fetches from the npm registry on a fresh clone (1–3 min in
 * CI), is a file of its own so that it runs beside the bundles; the flows are those that took
 * 20 s or more.
 */
const LONG_FILES = [
  "test/infra-typecheck.test.ts",
  "test/infra.test.ts",
  "test/separate-stores.test.ts",
  "test/fast-requeue.test.ts",
  "test/chaos.test.ts",
  "test/sweeper-scale.test.ts",
  "test/cli-jobs.test.ts",
  "test/dashboard.test.ts",
  "test/effects-flow.test.ts",
  "test/e2e-resilience.test.ts",
  "test/hung-jobs.test.ts",
];

/** How many files of either run at a time: CI has 2 cores. */
const UNIT_CONCURRENCY = 2;
const FLOW_CONCURRENCY = 2;

const files = (pattern: string) => globSync(pattern, { cwd: root }).sort();
const packageTests = files("packages/*/test/**/*.test.ts");
const testDirTests = files("test/**/*.test.ts");
const missing = [...OFFLINE_CHECKS_IN_TEST, ...LONG_FILES].filter((file) => !testDirTests.includes(file) && !packageTests.includes(file));
if (missing.length > 0) {
  console.error(`test/run-suite.ts names files that do not exist: ${missing.join(", ")}`);
  process.exit(1);
}
// An absolute path ("/…") sorts before every relative one, so these start first.
const longFirst = (file: string) => (LONG_FILES.includes(file) ? join(root, file) : file);
const concurrent = [...OFFLINE_CHECKS_IN_TEST, ...packageTests].map(longFirst);
const flows = testDirTests.filter((file) => !OFFLINE_CHECKS_IN_TEST.includes(file)).map(longFirst);

function runTests(label: string, concurrency: number, testFiles: string[]): number {
  console.log(`\n=== npm test, ${label}: ${testFiles.length} files, ${concurrency} at a time\n`);
  const result = spawnSync(
    process.execPath,
    [
      "--disable-warning=ExperimentalWarning",
      "--import",
      "tsx",
      "--test",
      `--test-concurrency=${concurrency}`,
      "--test-reporter=spec",
      ...process.argv.slice(2),
      ...testFiles,
    ],
    { cwd: root, stdio: "inherit" },
  );
  if (result.error) throw result.error;
  return result.status ?? 1;
}

const started = Date.now();
const unitStatus = runTests("unit tests and offline checks", UNIT_CONCURRENCY, concurrent);
const flowStatus = runTests("flows", FLOW_CONCURRENCY, flows);
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const failed = [unitStatus !== 0 && "unit tests and offline checks", flowStatus !== 0 && "flows"].filter(Boolean);
console.log(`\n=== npm test: ${failed.length === 0 ? "passed" : `FAILED (${failed.join(", ")})`} in ${minutes} min`);
process.exit(failed.length === 0 ? 0 : 1);
