/**
 * An `evaluate` task: check out the commit, find the derivations of its flake, ci.nix or
 * default.nix, ask Nix which need building, and stream that to the service as acknowledged
 * `evaluation-events` batches followed by `evaluation-done`.
 */
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { type CacheReport, cacheProblem, type EvaluateTask, type EvaluationDone, type JobConfig } from "@nimbus/protocol";
import { planWithCaches } from "../evaluation-caches.ts";
import { evaluationHints } from "../evaluation-hints.ts";
import { evaluatorEnvironment, isolatedCommand } from "../evaluation-isolation.ts";
import { batchEvents } from "../evaluation-events.ts";
import { streamEvents } from "../evaluation-stream.ts";
import { CheckoutError, checkoutCommit } from "../git-checkout.ts";
import { herculesCIArgs } from "../hercules-ci-args.ts";
import { truncateText } from "../message-size.ts";
import { PhaseTimings } from "../task-timings.ts";
import { type NixCall, NixQueryError } from "../nix-closure.ts";
import { nixErrorMessage } from "../nix-options.ts";
import { EvaluationFailure, type Evaluator, MAX_WALK_OUTPUT_BYTES, type WalkSource, walkAttributes } from "../nix-walk.ts";
import { ProcessStartError, runProcess } from "../process.ts";
import type { TaskContext, TaskKind, TaskOutcome } from "./task-kind.ts";

/** Hercules' order: a flake wins, then ci.nix, nix/ci.nix, default.nix. */
const NIX_FILES = ["ci.nix", "nix/ci.nix", "default.nix"];

export const evaluateTask: TaskKind<EvaluateTask> = {
  type: "evaluate",
  resultType: "evaluation-done",
  describe: (task) =>
    `evaluating ${task.repository} at ${task.commit}${task.handler ? ` (${task.handler.kind}.${task.handler.name})` : ""}${task.untrusted ? " (a fork's commit: untrusted, no secrets, no effects)" : ""}${task.cloneCredential ? " with a clone token" : ""}`,
  run: runEvaluation,
  internalError: (task, error, context) => ({
    result: { type: "evaluation-done", taskId: task.taskId, batches: context.acked.sent, status: "failed", error: truncateText(error, 8000) },
    outcome: { status: "failed", error },
  }),
};

async function runEvaluation(task: EvaluateTask, context: TaskContext): Promise<TaskOutcome> {
  const { log, acked, clock, evaluation: policy } = context;
  const directory = path.join(context.workDirectory, "eval", context.directoryName);
  const repo = path.join(directory, "repo");
  const scratch = path.join(directory, "tmp");
  let caches: CacheReport[] = [];
  let config: JobConfig | undefined;
  const done = (status: EvaluationDone["status"], error?: string): TaskOutcome => {
    context.link.send({
      type: "evaluation-done",
      taskId: task.taskId,
      batches: acked.sent,
      status,
      ...(error === undefined ? {} : { error: truncateText(error, 8000) }),
      ...(caches.length > 0 ? { caches } : {}),
      ...(config && status === "succeeded" ? { config } : {}),
    });
    return { status, ...(error === undefined ? {} : { error }) };
  };

  await rm(directory, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  // The evaluation's wall time: past it, every process it runs is stopped (their process groups).
  const deadline = new AbortController();
  const timer = clock.setTimeout(() => {
    const minutes = policy.timeoutMs / 60_000;
    const limit = minutes >= 1 ? `${Number(minutes.toFixed(1))} min` : `${policy.timeoutMs / 1000} s`;
    deadline.abort(new EvaluationFailure(`the evaluation took longer than ${limit} (evaluationTimeoutSeconds) and was stopped`));
  }, policy.timeoutMs);
  const signal = AbortSignal.any([context.signal, deadline.signal]);
  try {
    // Where the evaluation's time goes, at debug level (one line at the end).
    const timings = new PhaseTimings(clock);
    try {
      await checkoutCommit({
        cloneUrl: task.cloneUrl,
        commit: task.commit,
        ref: task.ref,
        directory: repo,
        signal,
        allowLocal: policy.allowLocalRepositories,
        // Outside the task's directory, the only part of the work directory the evaluator sees; gone after the fetch.
        ...(task.cloneCredential
          ? { credential: { ...task.cloneCredential, directory: path.join(context.workDirectory, "credentials", context.directoryName) } }
          : {}),
      });
      timings.mark("checkout");
      const source = findSource(task, repo);
      if (source === undefined) {
        return done("failed", `${task.repository} at ${task.commit} has no flake.nix, ${NIX_FILES.join(", ")}`);
      }
      // Paths inside the checkout read as the repository's own: "at ci.nix:3:5".
      const message = (stderr: string) =>
        nixErrorMessage(stderr, [
          [`${repo}/`, ""],
          ["«stdin»", "«nimbus walker»"],
        ]);
      // The repository's code runs only here: confined, limited, with nothing of the agent's.
      const evaluate: Evaluator = (args, stdin, limits) => {
        const { command, args: wrapped } = isolatedCommand(policy.plan, directory, repo, policy.nixInstantiate, args);
        return runProcess(command, wrapped, { env: evaluatorEnvironment(policy.plan, scratch), signal, stdin, processGroup: true, ...limits });
      };
      const walk = await walkAttributes({
        source,
        repo,
        systems: task.systems ?? context.nix.systems,
        herculesCIArgs: herculesCIArgs(task, context.apiBaseUrl),
        ...(task.handler ? { handler: task.handler } : {}),
        optionArgs: context.nix.optionArgs,
        allowedUris: policy.allowedUris,
        evaluate,
        signal,
        message: (stderr) => evaluationHints(message(stderr), policy),
        maxAttributes: policy.maxAttributes,
        maxOutputBytes: MAX_WALK_OUTPUT_BYTES,
      });
      timings.mark("walk");
      config = walk.config;
      // The agent's own questions about the .drv files it found: no repository code runs here.
      const call: NixCall = { optionArgs: context.nix.optionArgs, env: { ...process.env, TMPDIR: scratch }, signal, cwd: repo, message };
      // Which need building (this store, then every cache in bulk), and where their builders find what they need.
      // Effects and dependencies-only attributes are never built themselves; their inputs are (evaluation-events.ts).
      const plan = await planWithCaches(
        walk.attributes.map((a) => a.drvPath),
        call,
        context.caches,
        timings,
      );
      // Their .drv closures pushed piece by piece, each piece's events sent once it is pushed: the first builds start meanwhile.
      caches = await streamEvents({
        walk,
        plan,
        caches: context.caches,
        env: call.env,
        signal,
        timings,
        send: async (events) => {
          for (const batch of batchEvents(task.taskId, events)) {
            await acked.send((seq) => ({ type: "evaluation-events", taskId: task.taskId, seq, events: batch }));
          }
        },
      });
      for (const report of caches) if (report.status !== "pushed") log("warn", `task ${task.taskId}: ${cacheProblem(report)}`);
      log(
        "info",
        `task ${task.taskId}: ${walk.attributes.length} attributes, ${walk.errors.length} failed, ${plan.toBuild.size} derivations to build`,
      );
    } catch (err) {
      if (context.signal.aborted) throw err;
      const reason = deadline.signal.aborted ? deadline.signal.reason : err;
      const expected = [CheckoutError, EvaluationFailure, NixQueryError, ProcessStartError];
      if (expected.some((kind) => reason instanceof kind)) {
        return done("failed", (reason as Error).message);
      }
      throw err;
    } finally {
      clock.clearTimeout(timer);
    }
    // Done only once the service holds every batch: it may count on having them all.
    await acked.drain();
    timings.mark("send");
    log("debug", timings.line(task.taskId));
    return done("succeeded");
  } finally {
    clock.clearTimeout(timer);
    await rm(directory, { recursive: true, force: true });
  }
}

function findSource(task: EvaluateTask, repo: string): WalkSource | undefined {
  if (existsSync(path.join(repo, "flake.nix"))) {
    return {
      kind: "flake",
      // shallow=1: the checkout is usually a depth-1 fetch, which Nix otherwise refuses.
      flakeRef: `git+file://${repo.split("/").map(encodeURIComponent).join("/")}?rev=${task.commit}&shallow=1`,
    };
  }
  const file = NIX_FILES.find((name) => existsSync(path.join(repo, name)));
  return file === undefined ? undefined : { kind: "file", file: path.join(repo, file) };
}
