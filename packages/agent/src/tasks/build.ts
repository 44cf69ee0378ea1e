/**
 * A `build` task: one derivation built by Nix — through a long-lived `nix-store --serve --write`
 * when everything it needs is in the store (nix-builders.ts), else `nix-store --realise` — its
 * output streamed as `build-log` batches (the last one carried by the result when it fits), then
 * one `build-result`: succeeded (with outputs),
 * failed (the builder failed) or exceptional (anything else: Nix could not start, the derivation
 * does not fit this agent…).
 * A success with caches to push to says `build-pushing` between the two: the slot is free.
 */
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { CachePushError, pushToCaches } from "@nimbus/cache";
import { type BuildResult, type BuildTask, type CacheReport, cacheProblem, type UploadedPath } from "@nimbus/protocol";
import { BuildLogStream } from "../build-log.ts";
import { inputsInStore, readDerivationOutputs } from "../derivation-outputs.ts";
import { FRAME_BUDGET_BYTES, jsonBytes, truncateText } from "../message-size.ts";
import { PhaseTimings } from "../task-timings.ts";
import { type NixCall, NixQueryError, showDerivations } from "../nix-closure.ts";
import { nixErrorMessage } from "../nix-options.ts";
import { ProcessStartError, runProcess } from "../process.ts";
import type { TaskContext, TaskKind, TaskOutcome } from "./task-kind.ts";

type Verdict = Pick<BuildResult, "status" | "exitCode" | "error">;

export const buildTask: TaskKind<BuildTask> = {
  type: "build",
  resultType: "build-result",
  describe: (task) => `building ${task.drvPath}`,
  run: runBuild,
  internalError: (task, error) => ({
    result: { type: "build-result", taskId: task.taskId, drvPath: task.drvPath, status: "exceptional", error: truncateText(error, 8000) },
    outcome: { status: "exceptional", error },
  }),
};

async function runBuild(task: BuildTask, context: TaskContext): Promise<TaskOutcome> {
  const { link, signal } = context;
  // Where a build's time goes, at debug level: the wait for its inputs, Nix's build, reading its outputs, the push.
  const timings = new PhaseTimings(context.clock);
  const directory = path.join(context.workDirectory, "build", context.directoryName);
  const log = new BuildLogStream(link, task.taskId);
  const finish = (result: Omit<BuildResult, "type" | "taskId" | "drvPath">): TaskOutcome => {
    const error = result.error === undefined ? undefined : truncateText(result.error, 8000, 8 * 1024);
    const message: BuildResult = { type: "build-result", taskId: task.taskId, drvPath: task.drvPath, ...result, ...(error === undefined ? {} : { error }) };
    // The log's last batch rides on the result when the frame has room for it; else it goes first, on its own.
    const last = log.lastBatch(FRAME_BUDGET_BYTES - jsonBytes(message));
    if (!last) log.flush();
    link.send(last ? { ...message, log: last } : message);
    return { status: result.status, ...(error === undefined ? {} : { error }) };
  };

  await rm(directory, { recursive: true, force: true });
  await mkdir(directory, { recursive: true });
  // Nix puts the build's temporary directory under TMPDIR: keep it in the work directory.
  const env = { ...process.env, TMPDIR: directory };
  // Stopped on purpose (cancel, unknown-task, the agent leaving): nothing more is reported.
  const interrupted = (): never => {
    throw signal.reason;
  };
  try {
    // Inputs first, substituted only: an input a cache cannot give is a problem to retry, never something to build here.
    if (task.inputs && task.inputs.length > 0) {
      log.line(`nimbus: fetching ${task.inputs.length} input path${task.inputs.length === 1 ? "" : "s"}${task.inputCaches?.length ? ` (held by ${task.inputCaches.join(", ")})` : ""}`);
      let fetched;
      try {
        fetched = await runProcess(
          "nix-store",
          ["--realise", ...task.inputs, ...context.nix.optionArgs, ...context.nix.credentialArgs, "--no-gc-warning"],
          { env, signal, onLine: (line) => log.line(line), discardStdout: true },
        );
      } catch (err) {
        if (signal.aborted) return interrupted();
        if (err instanceof ProcessStartError) return finish({ status: "exceptional", error: err.message });
        throw err;
      }
      if (signal.aborted) return interrupted();
      if (fetched.code !== 0) {
        return finish({ status: "exceptional", error: `could not fetch its inputs from the caches: ${fetchFailure(fetched.stderr)}` });
      }
    }
    // The service sends a build only when no cache holds its outputs: with its inputs here, Nix need not ask the
    // substituters about them first (one narinfo request per output, each a service request) — docs/agent.md, "Builds".
    const substitute = !(await inputsInStore(task.drvPath));
    const buildOptions = [
      ...context.nix.optionArgs,
      // Features the agent was configured with are accepted even if nix.conf lacks them.
      ...["--option", "system-features", context.nix.buildFeatures.join(" ")],
      ...["--option", "max-jobs", "1"],
      ...context.nix.buildArgs,
    ];
    timings.mark("inputs");
    let run;
    try {
      // Everything it needs is here: to a long-lived Nix (nix-builders.ts), which never substitutes.
      run = substitute ? undefined : await context.nix.builders?.build(task.drvPath, { args: buildOptions, env, signal, onLine: (line) => log.line(line) });
      run ??= await runProcess(
        "nix-store",
        ["--realise", task.drvPath, ...buildOptions, ...context.nix.credentialArgs, ...(substitute ? [] : ["--option", "substitute", "false"]), "--no-gc-warning"],
        { env, signal, onLine: (line) => log.line(line), discardStdout: true },
      );
    } catch (err) {
      if (signal.aborted) return interrupted();
      if (err instanceof ProcessStartError) return finish({ status: "exceptional", error: err.message });
      throw err;
    }
    timings.mark("build");
    if (signal.aborted) return interrupted();
    if (run.code !== 0) {
      const verdict = classifyFailure(task.drvPath, run.code, run.signal, run.stderr);
      return finish({ ...verdict, ...(verdict.status === "failed" ? { logTail: log.logTail() } : {}) });
    }
    // After the build, not before: the .drv itself may have come from a substituter.
    try {
      const outputs = await builtOutputs(task.drvPath, { optionArgs: context.nix.optionArgs, env, signal, message: (stderr) => nixErrorMessage(stderr) });
      if (outputs === undefined) return finish({ status: "exceptional", error: `nix show-derivation did not describe ${task.drvPath}` });
      timings.mark("outputs");
      // Nix is done: the slot goes to the next task while the outputs go up; the result still waits for the pushes.
      if (Object.keys(outputs).length > 0 && context.caches.clients.some((c) => c.push)) {
        link.send({ type: "build-pushing", taskId: task.taskId, drvPath: task.drvPath });
        log.pushing();
        context.log("debug", `task ${task.taskId}: slot free while pushing its outputs`);
      }
      const pushed = await pushOutputs(task.taskId, Object.values(outputs), context, env, log);
      const { caches, publish } = await publishWithResult(task, outputs, pushed, context, log);
      timings.mark("push");
      context.log("debug", timings.line(task.taskId));
      if (signal.aborted) return interrupted();
      return finish({ status: "succeeded", outputs, ...(caches.length > 0 ? { caches } : {}), ...(publish ? { publish } : {}) });
    } catch (err) {
      if (signal.aborted) return interrupted();
      if (err instanceof NixQueryError || err instanceof ProcessStartError) {
        return finish({ status: "exceptional", error: `built, but its outputs are unknown: ${err.message}` });
      }
      throw err;
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Its `.drv` file says (no process); `nix show-derivation` when the file is not readable here or not in the form read. */
async function builtOutputs(drvPath: string, call: NixCall): Promise<Record<string, string> | undefined> {
  return (await readDerivationOutputs(drvPath)) ?? (await showDerivations([drvPath], call)).get(drvPath)?.outputs;
}

/** A push cache's report, and the claims of paths uploaded to it that its build's result is to publish. */
export interface Pushed {
  report: CacheReport;
  unpublished?: UploadedPath[];
}

/**
 * Signs and pushes the output closure to every push cache, only what each lacks; one report
 * per cache, in the build's log too. A failed push does not fail the build: its outputs stay in
 * this store, and the service keeps its dependents with this agent or says why they wait. The
 * built-in cache's last completion is left to the result (docs/cache.md, "Publication with the result").
 */
async function pushOutputs(taskId: string, outputs: string[], context: TaskContext, env: NodeJS.ProcessEnv, log: BuildLogStream): Promise<Pushed[]> {
  if (outputs.length === 0 || !context.caches.clients.some((c) => c.push)) return [];
  const options = { what: "outputs", env, signal: context.signal, pathInfos: context.caches.pathInfos, publishLater: true } as const;
  const results = await pushToCaches(context.caches.clients, outputs, options);
  return results.map((result): Pushed => {
    const report: CacheReport =
      result.status === "pushed"
        ? { cache: result.cache, status: "pushed", paths: result.pushed, alreadyPresent: result.alreadyPresent }
        : { cache: result.cache, status: "failed", reason: result.reason.slice(0, 2000) };
    const later = result.status === "pushed" ? result.unpublished : undefined;
    const problem = cacheProblem(report);
    if (problem === undefined && report.status === "pushed") {
      const published = later ? `; ${later.length} published with the build's result` : "";
      log.line(`nimbus: pushed ${report.paths} path${report.paths === 1 ? "" : "s"} to ${report.cache} (${report.alreadyPresent} already there${published})`);
    } else if (problem !== undefined) noteProblem(taskId, problem, context, log);
    return { report, ...(later ? { unpublished: later } : {}) };
  });
}

function noteProblem(taskId: string, problem: string, context: Pick<TaskContext, "log">, log: BuildLogStream): void {
  log.line(`nimbus: ${problem}`);
  context.log("warn", `task ${taskId}: ${problem}`);
}

/**
 * The result's cache reports and the claims it carries to publish (one cache has them: the
 * built-in one). Claims that would not fit the result's frame beside the rest are completed
 * here first, as any other upload is, and a refusal is then this cache's report.
 */
export async function publishWithResult(
  task: Pick<BuildTask, "taskId" | "drvPath">,
  outputs: Record<string, string>,
  pushed: Pushed[],
  context: Pick<TaskContext, "caches" | "signal" | "log">,
  log: BuildLogStream,
): Promise<{ caches: CacheReport[]; publish?: UploadedPath[] }> {
  const caches = pushed.map((p) => p.report);
  const later = pushed.find((p) => p.unpublished);
  if (!later?.unpublished) return { caches };
  const result: BuildResult = { type: "build-result", taskId: task.taskId, drvPath: task.drvPath, status: "succeeded", outputs, caches, publish: later.unpublished };
  if (jsonBytes(result) <= FRAME_BUDGET_BYTES) return { caches, publish: later.unpublished };
  const client = context.caches.clients.find((c) => c.cache === later.report.cache);
  try {
    if (!client?.publish) throw new CachePushError(later.report.cache, "this cache publishes nothing an upload left");
    await client.publish(later.unpublished, context.signal);
    return { caches };
  } catch (err) {
    if (!(err instanceof CachePushError)) throw err;
    const failed: CacheReport = { cache: later.report.cache, status: "failed", reason: err.message.slice(0, 2000) };
    noteProblem(task.taskId, cacheProblem(failed)!, context, log);
    return { caches: caches.map((c) => (c === later.report ? failed : c)) };
  }
}

/**
 * Why Nix could not substitute: its `error:` says only "build of … failed"; the reason is in
 * the warnings before it ("… is not signed by any of the keys in 'trusted-public-keys'").
 */
function fetchFailure(stderr: string): string {
  const warnings = stderr.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "").split("\n").filter((l) => l.startsWith("warning:") && /substitut/.test(l));
  return [...new Set(warnings), nixErrorMessage(stderr)].join("\n");
}

const BUILDER_FAILED = /^error: builder for '([^']+)' failed with exit code (\d+)/m;

/**
 * Nix 2.8 exits with 100–111 when builds failed (100 + bits for timeout, hash mismatch…) and
 * says `error: builder for '<drv>' failed with exit code N`. Only a failure of this very
 * derivation is `failed` (cached until a rebuild); an input failing here means the agent was
 * given a derivation whose inputs were not there, and any other error (e.g. "a 'x86_64-linux'
 * with features {kvm} is required") means it should not have been given it: `exceptional`.
 */
export function classifyFailure(drvPath: string, code: number | null, signal: NodeJS.Signals | null, stderr: string): Verdict {
  const builder = BUILDER_FAILED.exec(stderr);
  if (builder !== null) {
    if (builder[1] === drvPath) return { status: "failed", exitCode: Number(builder[2]), error: nixErrorMessage(stderr) };
    return { status: "exceptional", error: `input ${builder[1]} failed to build on this agent: ${nixErrorMessage(stderr)}` };
  }
  if (code !== null && code >= 100 && code <= 111) return { status: "failed", exitCode: code, error: nixErrorMessage(stderr) };
  if (code === null) return { status: "exceptional", error: `nix-store was killed by ${signal ?? "a signal"}` };
  return { status: "exceptional", exitCode: code, error: nixErrorMessage(stderr) };
}
