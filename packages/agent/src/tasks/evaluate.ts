/**
 * An `evaluate` task: check out the commit, find the derivations of its flake, ci.nix or
 * default.nix, ask Nix which need building, and stream that to the service as acknowledged
 * `evaluation-events` batches followed by `evaluation-done`.
 */
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { EvaluateTask, EvaluationDone } from "@nimbus/protocol";
import { type CacheReport, cacheProblem } from "@nimbus/protocol";
import { planWithCaches } from "../evaluation-caches.ts";
import { batchEvents, evaluationEvents } from "../evaluation-events.ts";
import { CheckoutError, checkoutCommit, redactCredentials } from "../git-checkout.ts";
import { truncateText } from "../message-size.ts";
import { type NixCall, NixQueryError } from "../nix-closure.ts";
import { nixErrorMessage } from "../nix-options.ts";
import { EvaluationFailure, type WalkSource, walkAttributes } from "../nix-walk.ts";
import { ProcessStartError } from "../process.ts";
import type { TaskContext, TaskKind, TaskOutcome } from "./task-kind.ts";

/** Hercules' order: a flake wins, then ci.nix, nix/ci.nix, default.nix. */
const NIX_FILES = ["ci.nix", "nix/ci.nix", "default.nix"];

export const evaluateTask: TaskKind<EvaluateTask> = {
  type: "evaluate",
  resultType: "evaluation-done",
  describe: (task) => `evaluating ${task.repository} at ${task.commit}`,
  run: runEvaluation,
  internalError: (task, error, context) => ({
    result: { type: "evaluation-done", taskId: task.taskId, batches: context.acked.sent, status: "failed", error: truncateText(error, 8000) },
    outcome: { status: "failed", error },
  }),
};

async function runEvaluation(task: EvaluateTask, context: TaskContext): Promise<TaskOutcome> {
  const { log, signal, acked } = context;
  const directory = path.join(context.workDirectory, "eval", context.directoryName);
  const repo = path.join(directory, "repo");
  let caches: CacheReport[] = [];
  const done = (status: EvaluationDone["status"], error?: string): TaskOutcome => {
    context.link.send({
      type: "evaluation-done",
      taskId: task.taskId,
      batches: acked.sent,
      status,
      ...(error === undefined ? {} : { error: truncateText(error, 8000) }),
      ...(caches.length > 0 ? { caches } : {}),
    });
    return { status, ...(error === undefined ? {} : { error }) };
  };

  await rm(directory, { recursive: true, force: true });
  await mkdir(path.join(directory, "tmp"), { recursive: true });
  try {
    let events;
    let phaseStarted = Date.now();
    const phase = (what: string) => {
      log("debug", `task ${task.taskId}: ${what} in ${((Date.now() - phaseStarted) / 1000).toFixed(1)} s`);
      phaseStarted = Date.now();
    };
    try {
      await checkoutCommit({ cloneUrl: task.cloneUrl, commit: task.commit, ref: task.ref, directory: repo, signal });
      phase("checked out");
      const source = findSource(task, repo);
      if (source === undefined) {
        return done("failed", `${task.repository} at ${task.commit} has no flake.nix, ${NIX_FILES.join(", ")}`);
      }
      const env = { ...process.env, TMPDIR: path.join(directory, "tmp") };
      // Paths inside the checkout read as the repository's own: "at ci.nix:3:5".
      const message = (stderr: string) =>
        nixErrorMessage(stderr, [
          [`${repo}/`, ""],
          [path.join(directory, "nimbus-walk.nix"), "«nimbus walker»"],
        ]);
      const call: NixCall = { optionArgs: context.nix.optionArgs, env, signal, cwd: repo, message };
      const walk = await walkAttributes({
        source,
        directory,
        cwd: repo,
        systems: task.systems ?? context.nix.systems,
        optionArgs: context.nix.optionArgs,
        env,
        signal,
        message,
      });
      phase(`evaluated ${walk.attributes.length + walk.errors.length} attributes`);
      // Which need building (this store, then every cache in bulk), their .drv closure pushed for builders elsewhere.
      const plan = await planWithCaches(
        walk.attributes.map((a) => a.drvPath),
        call,
        context.caches,
      );
      caches = plan.reports;
      for (const report of caches) if (report.status !== "pushed") log("warn", `task ${task.taskId}: ${cacheProblem(report)}`);
      phase("asked the store and the caches which derivations need building, pushed their .drv closure");
      const built = plan.toBuild;
      events = evaluationEvents(walk, built, plan.infos, plan.sources);
      log(
        "info",
        `task ${task.taskId}: ${walk.attributes.length} attributes, ${walk.errors.length} failed, ${built.size} derivations to build`,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      const expected = [CheckoutError, EvaluationFailure, NixQueryError, ProcessStartError];
      if (expected.some((kind) => err instanceof kind)) {
        return done("failed", (err as Error).message);
      }
      throw err;
    }
    for (const batch of batchEvents(task.taskId, events)) {
      await acked.send((seq) => ({ type: "evaluation-events", taskId: task.taskId, seq, events: batch }));
    }
    // Done only once the service holds every batch: it may count on having them all.
    await acked.drain();
    phase(`sent ${events.length} events in ${acked.sent} batches`);
    return done("succeeded");
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function findSource(task: EvaluateTask, repo: string): WalkSource | undefined {
  if (existsSync(path.join(repo, "flake.nix"))) {
    return {
      kind: "flake",
      // shallow=1: the checkout is usually a depth-1 fetch, which Nix otherwise refuses.
      flakeRef: `git+file://${repo.split("/").map(encodeURIComponent).join("/")}?rev=${task.commit}&shallow=1`,
      herculesCIArgs: herculesCIArgs(task),
    };
  }
  const file = NIX_FILES.find((name) => existsSync(path.join(repo, name)));
  return file === undefined ? undefined : { kind: "file", file: path.join(repo, file) };
}

/** What a flake's `herculesCI` function is called with: a small subset of Hercules' arguments. */
function herculesCIArgs(task: EvaluateTask): unknown {
  const ref = task.ref ?? null;
  const remote = /^https?:\/\//.test(task.cloneUrl) ? redactCredentials(task.cloneUrl).replace("***@", "") : null;
  return {
    primaryRepo: {
      ref,
      branch: ref?.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : null,
      tag: ref?.startsWith("refs/tags/") ? ref.slice("refs/tags/".length) : null,
      rev: task.commit,
      shortRev: task.commit.slice(0, 7),
      remoteHttpUrl: remote,
    },
    herculesCI: { ciSystems: null },
  };
}
