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
 * Beside both runs, from the start, in a process of its own: sst.config.ts's type-check
 * (test/infra-typecheck.test.ts). On a fresh clone its `sst install` waits one to three minutes
 * on the npm registry, which in the first run held one of its two lanes (the unit run took 226 s
 * in CI against about 175 s without it); beside the others it waits on the network while they
 * use the cores. Its report is printed after the flows'.
 * A new file under test/ is a flow unless it is named here.
 * Node's runner starts the files of a run in sorted order, whatever order they are given in; each
 * run's longest files are given as absolute paths, which sort first (LONG_FILES).
 * Arguments (e.g. `--test-name-pattern=...`) are passed to both runs and the type-check.
 */
import { spawn } from "node:child_process";
import { globSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Network-bound on a fresh clone: it runs beside both runs, not in a lane of either. */
const BESIDE = "test/infra-typecheck.test.ts";

/** Files under test/ that start no stack, agent, browser or Nix build: they may run beside others. */
const OFFLINE_CHECKS_IN_TEST = [
  "test/infra.test.ts",
  BESIDE,
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
 * the flows are those that took 20 s or more.
 */
const LONG_FILES = [
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
const concurrent = [...OFFLINE_CHECKS_IN_TEST.filter((file) => file !== BESIDE), ...packageTests].map(longFirst);
const flows = testDirTests.filter((file) => !OFFLINE_CHECKS_IN_TEST.includes(file)).map(longFirst);

const testArgs = (concurrency: number, testFiles: string[]) => [
  "--disable-warning=ExperimentalWarning",
  "--import",
  "tsx",
  "--test",
  `--test-concurrency=${concurrency}`,
  "--test-reporter=spec",
  ...process.argv.slice(2),
  ...testFiles,
];

/** One run, its report on this terminal; not spawnSync, which would leave the run beside unread until it ends. */
function runTests(label: string, concurrency: number, testFiles: string[]): Promise<number> {
  console.log(`\n=== npm test, ${label}: ${testFiles.length} files, ${concurrency} at a time\n`);
  const child = spawn(process.execPath, testArgs(concurrency, testFiles), { cwd: root, stdio: "inherit" });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve(code ?? 1));
  });
}

/** Starts a file's run now, its report kept until `report()` prints it (interleaved, it would garble the others'). */
function runBeside(file: string): { report(): Promise<number> } {
  const child = spawn(process.execPath, testArgs(1, [file]), { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => chunks.push(chunk));
  const status = new Promise<number>((resolve) => {
    child.on("error", (error) => {
      chunks.push(Buffer.from(`could not start ${file}: ${error.message}\n`));
      resolve(1);
    });
    child.on("close", (code) => resolve(code ?? 1));
  });
  return {
    async report() {
      const code = await status;
      console.log(`\n=== npm test, ${file}, run beside the others from the start\n`);
      process.stdout.write(Buffer.concat(chunks));
      return code;
    },
  };
}

const started = Date.now();
const beside = runBeside(BESIDE);
const unitStatus = await runTests("unit tests and offline checks", UNIT_CONCURRENCY, concurrent);
const flowStatus = await runTests("flows", FLOW_CONCURRENCY, flows);
const besideStatus = await beside.report();
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const failed = [unitStatus !== 0 && "unit tests and offline checks", flowStatus !== 0 && "flows", besideStatus !== 0 && BESIDE].filter(Boolean);
console.log(`\n=== npm test: ${failed.length === 0 ? "passed" : `FAILED (${failed.join(", ")})`} in ${minutes} min`);
process.exit(failed.length === 0 ? 0 : 1);
