/**
 * The `realnix` scenario: n trivial derivations, never built before (a fresh nonce per run),
 * built through the whole local stack by 4 real `nimbus agent` processes of one slot each —
 * from the signed push webhook to the job's verdict, evaluation included — and, in the same
 * run, the floor: `xargs -P4 nix-store --realise` over n derivations of the same kind (their
 * own nonce, so they are not cached either; instantiated beforehand, not timed).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { declineHookArgs, detectNix, NixBuilders } from "@nimbus/agent";
import { sendSignedPush as sendPush } from "@nimbus/cli";
import { BenchError, openBenchStack, sleep } from "./bench-stack.ts";
import { startCpuMeter } from "./cpu-meter.ts";
import { describeBreakdown, type RealNixBreakdown, realNixBreakdown } from "./real-nix-breakdown.ts";
import type { CounterReport } from "./request-counter.ts";
import { round } from "./stats.ts";

const run = promisify(execFile);
const NIMBUS_BIN = resolve(fileURLToPath(new URL("../packages/cli/bin/nimbus.js", import.meta.url)));
const AGENTS = 4;

export interface RealNixResult {
  n: number;
  agents: number;
  wallSeconds: number;
  floorSeconds: number;
  /** wallSeconds / floorSeconds (#11 asks for at most 1.5). */
  ratio: number;
  /** The floor's `nix-instantiate` (not part of floorSeconds; Nimbus's wall includes its evaluation). */
  floorInstantiateSeconds: number;
  /** The floor's Nix options beyond `--realise`: the agents' own (no substituters; their declining build hook, if they use one). */
  floorOptions: string[];
  /** The same builds through the agents' own long-lived `nix-store --serve --write` processes (nix-builders.ts), AGENTS at a time. */
  serveFloorSeconds: number;
  /** wallSeconds / serveFloorSeconds: what Nimbus's coordination adds to the builds it makes. */
  serveRatio: number;
  /** With NIMBUS_BENCH_REALNIX_PLAIN_FLOOR=1: the same xargs with Nix's own build hook, as a bare `nix-store --realise` runs. */
  plainFloorSeconds?: number;
  /** wallSeconds / plainFloorSeconds. */
  plainRatio?: number;
  jobStatus: string;
  /** Where the wall went: evaluation phases, per-build phases on the agents, the gaps between, the handlers' time. */
  breakdown: RealNixBreakdown;
  requestsPerBuild: { dynamodb: number; sqs: number; gateway: number; total: number };
  requests: CounterReport;
}

/** A ci.nix of n trivial derivations, unique to `nonce`. */
export function trivialCiNix(n: number, nonce: string): string {
  return [
    "let",
    `  mk = i: derivation {`,
    `    name = "bench-${nonce}-\${toString i}";`,
    "    system = builtins.currentSystem;",
    '    builder = "/bin/sh";',
    '    args = [ "-c" "echo ${toString i} > $out" ];',
    "  };",
    `in builtins.listToAttrs (builtins.genList (i: { name = "d\${toString i}"; value = mk i; }) ${n})`,
    "",
  ].join("\n");
}

async function requireNix(): Promise<void> {
  try {
    await run("nix-store", ["--version"]);
  } catch {
    throw new BenchError("the realnix scenario needs Nix (nix-store and nix-instantiate on PATH): install Nix, or leave realnix out");
  }
}

export async function runRealNixScenario(options: { n: number; timeoutMs: number }): Promise<RealNixResult> {
  await requireNix();
  const nonce = randomBytes(6).toString("hex");
  const dir = await mkdtemp(join(tmpdir(), "nimbus-bench-nix-"));
  console.log(`realnix: ${options.n} trivial never-cached derivations, ${AGENTS} real agents of one slot each, vs xargs -P${AGENTS} nix-store --realise`);
  const bench = await openBenchStack();
  const children: ChildProcess[] = [];
  const outputs: string[] = [];
  try {
    // The repository.
    const repo = join(dir, "repo");
    await run("git", ["init", "-q", "-b", "main", repo]);
    await writeFile(join(repo, "ci.nix"), trivialCiNix(options.n, nonce));
    const git = (...args: string[]) => run("git", ["-C", repo, "-c", "user.name=Nimbus Bench", "-c", "user.email=bench@nimbus.invalid", ...args]);
    await git("add", "-A");
    await git("commit", "-q", "-m", "bench");
    const commit = (await git("rev-parse", "HEAD")).stdout.trim();

    // The agents.
    const { stack, reads, counter } = bench;
    for (let i = 0; i < AGENTS; i++) {
      const agentDir = join(dir, `agent-${i}`);
      await mkdir(agentDir, { recursive: true });
      await writeFile(join(agentDir, "token.key"), `${bench.token}\n`, { mode: 0o600 });
      await writeFile(
        join(agentDir, "agent.toml"),
        [
          `apiBaseUrl = "${stack.url}"`,
          `clusterJoinTokenPath = "token.key"`,
          "concurrentTasks = 1",
          "allowLocalRepositories = true",
          "machineSubstituters = false",
          // Debug lines carry each task's timings: the breakdown is read from them.
          'logLevel = "debug"',
          `[labels]\nname = "bench-${i}"`,
        ].join("\n"),
      );
      // NIMBUS_BENCH_REALNIX_CPU_PROF=<dir>: each agent writes a V8 CPU profile there when it leaves.
      const profile = process.env["NIMBUS_BENCH_REALNIX_CPU_PROF"];
      const nodeArgs = profile ? ["--cpu-prof", `--cpu-prof-dir=${resolve(profile)}`] : [];
      const child = spawn(process.execPath, [...nodeArgs, NIMBUS_BIN, "agent", "--config", join(agentDir, "agent.toml")], { stdio: ["ignore", "pipe", "pipe"] });
      outputs[i] = "";
      child.stdout!.on("data", (d) => (outputs[i] += d));
      child.stderr!.on("data", (d) => (outputs[i] += d));
      children.push(child);
    }
    const connectDeadline = Date.now() + 60_000;
    while ((await reads.agents()).length < AGENTS) {
      if (Date.now() > connectDeadline) throw new BenchError(`the ${AGENTS} agents did not all connect within 60 s:\n${outputs.join("\n---\n").slice(-3000)}`);
      await sleep(200);
    }
    await sleep(1000);
    counter.reset();

    const loopBefore = performance.eventLoopUtilization();
    const cpuMeter = startCpuMeter(children.map((c) => c.pid!));
    const webhookAt = Date.now();
    const push = await sendPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "nimbus/bench-realnix", commit, cloneUrl: `file://${repo}` });
    if (push.status !== 201) throw new BenchError(`the push webhook was answered ${push.status}: ${JSON.stringify(push.body)}`);
    const jobId = String(push.body.jobId);
    let status = "";
    let lastProgress = Date.now();
    for (;;) {
      const job = await reads.job(jobId);
      status = job.status;
      if (["succeeded", "failed", "cancelled"].includes(status)) break;
      if (Date.now() - webhookAt > options.timeoutMs) {
        throw new BenchError(`the real-Nix job did not finish within ${options.timeoutMs / 1000} s: ${status} ${JSON.stringify(job.counts ?? {})}`);
      }
      if (Date.now() - lastProgress >= 5000) {
        lastProgress = Date.now();
        console.log(`  … ${((Date.now() - webhookAt) / 1000).toFixed(0)} s: job ${status}, counts ${JSON.stringify(job.counts ?? {})}`);
      }
      // The wall is read from the job's finishedAt, not from when this loop sees it: polling seldom
      // keeps the bench's own API calls (the whole job view, on the stack's thread) off the figures.
      await sleep(500);
    }
    const job = await reads.job(jobId);
    const finishedAt = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
    const wallSeconds = (finishedAt - webhookAt) / 1000;
    if (status !== "succeeded") throw new BenchError(`the real-Nix job ended ${status}: ${outputs.join("\n---\n").slice(-3000)}`);
    const cpu = cpuMeter.stop();
    const requests = counter.report();
    // The local stack's handlers, gateway and S3 share this thread: how busy it was says whether they were the limit.
    const mainThreadBusy = round(performance.eventLoopUtilization(loopBefore).utilization, 2);
    console.log(`  Nimbus: ${round(wallSeconds)} s from the webhook to the verdict`);
    const breakdown = realNixBreakdown({
      logs: outputs,
      webhookAt,
      verdictAt: finishedAt,
      builds: options.n,
      handlerMs: requests.perInvocation.map((p) => ({ source: p.source, totalMs: p.totalMs })),
      requests: requests.bySource,
      mainThreadBusy,
      cpuMs: cpu,
    });
    for (const line of describeBreakdown(breakdown)) console.log(`    ${line}`);

    // The floor, in the same run, after the agents are gone (they would compete for the cores).
    for (const child of children) child.kill("SIGTERM");
    await sleep(500);
    // A profile is written as the agent exits: give them time to leave cleanly.
    for (let waited = 0; process.env["NIMBUS_BENCH_REALNIX_CPU_PROF"] && waited < 20_000 && children.some((c) => c.exitCode === null && c.signalCode === null); waited += 200) await sleep(200);
    const floorFile = join(dir, "floor.nix");
    await writeFile(floorFile, trivialCiNix(options.n, `${nonce}-floor`));
    const instantiateStart = performance.now();
    const drvs = (await run("nix-instantiate", [floorFile], { maxBuffer: 64 * 2 ** 20 })).stdout.trim().split("\n");
    const floorInstantiateSeconds = (performance.now() - instantiateStart) / 1000;
    if (drvs.length !== options.n) throw new BenchError(`nix-instantiate gave ${drvs.length} derivations, not ${options.n}`);
    // The same nix-store calls the agents make: their build hook too, which declines at once (packages/agent/src/build-hook.ts).
    const hook = await declineHookArgs(await detectNix(), dir);
    const floorOptions = ["--option", "substituters", "", ...hook.args];
    const floorSeconds = await timedXargs(drvs, floorOptions);
    console.log(`  floor: ${round(floorSeconds)} s for xargs -P${AGENTS} nix-store ${floorOptions.map((o) => o || "''").join(" ")} --realise (instantiate ${round(floorInstantiateSeconds)} s, not counted)`);
    // The same builds as the agents now make them (packages/agent/src/nix-builders.ts): what Nimbus's coordination adds to.
    const serveDrvs = (await run("nix-instantiate", [await floorCopy(dir, options.n, `${nonce}-serve`)], { maxBuffer: 64 * 2 ** 20 })).stdout.trim().split("\n");
    const serveFloorSeconds = await timedServeBuilds(serveDrvs, floorOptions, dir);
    console.log(`  serve floor: ${round(serveFloorSeconds)} s for the same builds through ${AGENTS} nix-store --serve --write, as the agents build (Nimbus ${round(wallSeconds / serveFloorSeconds, 2)}× of it)`);
    let plainFloorSeconds: number | undefined;
    if (process.env["NIMBUS_BENCH_REALNIX_PLAIN_FLOOR"] === "1") {
      const plainDrvs = (await run("nix-instantiate", [await floorCopy(dir, options.n, `${nonce}-plain`)], { maxBuffer: 64 * 2 ** 20 })).stdout.trim().split("\n");
      plainFloorSeconds = await timedXargs(plainDrvs, ["--option", "substituters", ""]);
      console.log(`  plain floor (Nix's own build hook): ${round(plainFloorSeconds)} s (Nimbus ${round(wallSeconds / plainFloorSeconds, 2)}× of it)`);
    }
    const perBuild = (x: number) => round(x / options.n, 2);
    return {
      n: options.n,
      agents: AGENTS,
      wallSeconds: round(wallSeconds),
      floorSeconds: round(floorSeconds),
      ratio: round(wallSeconds / floorSeconds, 2),
      floorInstantiateSeconds: round(floorInstantiateSeconds),
      floorOptions,
      serveFloorSeconds: round(serveFloorSeconds),
      serveRatio: round(wallSeconds / serveFloorSeconds, 2),
      ...(plainFloorSeconds === undefined ? {} : { plainFloorSeconds: round(plainFloorSeconds), plainRatio: round(wallSeconds / plainFloorSeconds, 2) }),
      jobStatus: status,
      breakdown,
      requestsPerBuild: {
        dynamodb: perBuild(requests.counted.dynamodb),
        sqs: perBuild(requests.counted.sqs),
        gateway: perBuild(requests.counted.gateway),
        total: perBuild(requests.counted.total),
      },
      requests,
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    // Each agent's own log, kept for a look at where its time went (NIMBUS_BENCH_REALNIX_LOGS=<dir>).
    const logs = process.env["NIMBUS_BENCH_REALNIX_LOGS"];
    if (logs) {
      await mkdir(logs, { recursive: true });
      for (const [i, output] of outputs.entries()) await writeFile(join(logs, `agent-${i}.log`), output);
    }
    await bench.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Another ci.nix of n trivial derivations, never built, for a second floor. */
async function floorCopy(dir: string, n: number, nonce: string): Promise<string> {
  const file = join(dir, `${nonce}.nix`);
  await writeFile(file, trivialCiNix(n, nonce));
  return file;
}

/** The derivations built by the agents' own serve processes, AGENTS at a time, seconds. */
async function timedServeBuilds(drvs: string[], nixOptions: string[], dir: string): Promise<number> {
  const builders = new NixBuilders(join(dir, "serve-floor"), { maxSilentTime: 0, buildTimeout: 0, maxLogSize: 0 });
  const start = performance.now();
  try {
    const queue = [...drvs];
    const signal = new AbortController().signal;
    await Promise.all(
      Array.from({ length: AGENTS }, async () => {
        for (let drv = queue.shift(); drv !== undefined; drv = queue.shift()) {
          const built = await builders.build(drv, { args: nixOptions, env: process.env, signal, onLine: () => {} });
          if (built?.code !== 0) throw new BenchError(`the serve floor's build of ${drv} failed: ${built?.stderr.slice(-2000) ?? "no nix-store --serve"}`);
        }
      }),
    );
    return (performance.now() - start) / 1000;
  } finally {
    builders.close();
  }
}

/** `xargs -P4 -n1 nix-store <options> --realise`, seconds. */
function timedXargs(drvs: string[], nixOptions: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const start = performance.now();
    const child = spawn("xargs", ["-P", String(AGENTS), "-n", "1", "nix-store", ...nixOptions, "--realise"], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new BenchError(`xargs nix-store --realise exited ${code}: ${stderr.slice(-2000)}`));
      else resolvePromise((performance.now() - start) / 1000);
    });
    child.stdin.end(`${drvs.join("\n")}\n`);
  });
}
