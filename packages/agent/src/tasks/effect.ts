/**
 * An `effect` task (docs/effects.md): the effect derivation's inputs realised, the secrets it asks
 * for granted by secrets.json's conditions, its builder run in the sandbox of effect-sandbox.ts
 * with a deadline, its output streamed as `effect-log` batches, then one `effect-result`.
 */
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { EffectResult, EffectTask } from "@nimbus/protocol";
import { BuildLogStream } from "../build-log.ts";
import { effectMounts, MountRefusedError, sandboxCommand } from "../effect-sandbox.ts";
import { truncateText } from "../message-size.ts";
import { ProcessStartError, runProcess } from "../process.ts";
import { grantSecrets, loadSecretsJson, parseSecretsMap, SecretRefusedError, SecretsConfigError, type SecretContext } from "../secrets-json.ts";
import type { TaskContext, TaskKind, TaskOutcome } from "./task-kind.ts";

export const effectTask: TaskKind<EffectTask> = {
  type: "effect",
  resultType: "effect-result",
  describe: (task) => `running effect ${task.attribute.join(".")} of ${task.repository} at ${task.ref} (${task.drvPath})`,
  run: runEffect,
  internalError: (task, error) => ({
    result: { type: "effect-result", taskId: task.taskId, status: "exceptional", error: truncateText(error, 8000) },
    outcome: { status: "exceptional", error },
  }),
};

/** What `nix show-derivation` says of the effect's derivation. */
interface ShownDerivation {
  builder: string;
  args: string[];
  env: Record<string, string>;
  inputDrvs: Record<string, string[]>;
  inputSrcs: string[];
}

/** Something short of the effect itself went wrong: `exceptional`, tried again. */
class EffectSetupError extends Error {}

async function runEffect(task: EffectTask, context: TaskContext): Promise<TaskOutcome> {
  const { link, signal, clock } = context;
  const directory = path.join(context.workDirectory, "effect", context.directoryName);
  const log = new BuildLogStream(link, task.taskId, 250, 1000, "effect-log");
  const finish = (result: Omit<EffectResult, "type" | "taskId">): TaskOutcome => {
    log.flush();
    const error = result.error === undefined ? undefined : truncateText(result.error, 8000, 8 * 1024);
    link.send({ type: "effect-result", taskId: task.taskId, ...result, ...(error === undefined ? {} : { error }) });
    return { status: result.status, ...(error === undefined ? {} : { error }) };
  };
  const interrupted = (): never => {
    throw signal.reason;
  };
  const [owner = "", repo = task.repository] = task.repository.includes("/") ? task.repository.split("/", 2) : ["", task.repository];
  const job: SecretContext = { owner, repo, ref: task.ref, isDefaultBranch: task.isDefaultBranch };
  const nixEnv = { ...process.env, TMPDIR: directory };
  const nix = async (command: string, args: string[]) => {
    try {
      return await runProcess(command, args, { env: nixEnv, signal, onLine: (line, stream) => stream === "stderr" && log.line(line), discardStdout: false });
    } catch (err) {
      if (signal.aborted) return interrupted();
      if (err instanceof ProcessStartError) throw new EffectSetupError(err.message);
      throw err;
    }
  };

  await rm(directory, { recursive: true, force: true });
  const build = path.join(directory, "build");
  const etc = path.join(directory, "etc");
  const secrets = path.join(directory, "secrets");
  await mkdir(build, { recursive: true });
  await mkdir(etc, { recursive: true });
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  await chmod(secrets, 0o700);
  try {
    let shown: ShownDerivation;
    try {
      shown = await prepare(task, context, nix, (line) => log.line(line));
    } catch (err) {
      if (err instanceof EffectSetupError) return finish({ status: "exceptional", error: err.message });
      throw err;
    }
    if (signal.aborted) return interrupted();

    // Exactly what it asks for, each only if its condition holds; the file goes only into this effect's /secrets.
    let granted;
    let mounts;
    try {
      const wanted = parseSecretsMap(shown.env.secretsToUse ?? shown.env.secretsMap, shown.env.secretsToUse !== undefined ? "secretsToUse" : "secretsMap");
      const available = wanted.size > 0 && context.effects.secretsJsonPath !== undefined ? await loadSecretsJson(context.effects.secretsJsonPath) : undefined;
      granted = grantSecrets(wanted, available, job);
      mounts = effectMounts(shown.env.__hci_effect_mounts, context.effects.mountables, job);
    } catch (err) {
      if (err instanceof SecretRefusedError || err instanceof SecretsConfigError || err instanceof MountRefusedError) {
        log.line(`nimbus: ${err.message}`);
        return finish({ status: "failed", error: err.message });
      }
      throw err;
    }
    await writeFile(path.join(secrets, "secrets.json"), JSON.stringify(granted), { mode: 0o600 });
    const names = Object.keys(granted);
    log.line(`nimbus: running the effect${names.length > 0 ? ` with secrets ${names.join(", ")}` : ""}${mounts.length > 0 ? `, mounts ${mounts.map((m) => m.path).join(", ")}` : ""}`);

    const { command, args } = sandboxCommand({
      bwrap: context.effects.bwrap,
      build,
      etc,
      secrets,
      mounts,
      builder: shown.builder,
      args: shown.args,
      derivationEnv: shown.env,
      apiBaseUrl: context.apiBaseUrl,
    });
    // The effect's wall time: past it, its process group is stopped.
    const deadline = new AbortController();
    const timer = clock.setTimeout(() => deadline.abort(new Error("deadline")), context.effects.timeoutMs);
    let run;
    try {
      run = await runProcess(command, args, {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
        signal: AbortSignal.any([signal, deadline.signal]),
        processGroup: true,
        onLine: (line) => log.line(line),
        discardStdout: true,
      });
    } catch (err) {
      if (signal.aborted) return interrupted();
      if (err instanceof ProcessStartError) {
        return finish({ status: "exceptional", error: `cannot start the effect's sandbox (${err.message}); install bubblewrap (Debian: apt-get install -y bubblewrap)` });
      }
      throw err;
    } finally {
      clock.clearTimeout(timer);
    }
    if (signal.aborted) return interrupted();
    if (deadline.signal.aborted) {
      const seconds = context.effects.timeoutMs / 1000;
      return finish({ status: "failed", error: `the effect took longer than ${seconds} s (effectTimeoutSeconds) and was stopped`, logTail: log.logTail() });
    }
    if (run.code === 0) return finish({ status: "succeeded" });
    const how = run.code === null ? `was killed by ${run.signal}` : `exited with code ${run.code}`;
    return finish({ status: "failed", ...(run.code !== null ? { exitCode: run.code } : {}), error: `the effect ${how}`, logTail: log.logTail() });
  } finally {
    // The granted secrets go with the directory.
    await rm(directory, { recursive: true, force: true });
  }
}

/** The effect's derivation in this store (fetched from a cache if need be), its inputs realised, and what it says. */
async function prepare(
  task: EffectTask,
  context: TaskContext,
  nix: (command: string, args: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>,
  line: (text: string) => void,
): Promise<ShownDerivation> {
  const options = [...context.nix.optionArgs, ...context.nix.credentialArgs];
  const valid = async () => (await nix("nix-store", ["--check-validity", task.drvPath])).code === 0;
  if (!(await valid())) {
    for (const url of context.caches.urls) {
      line(`nimbus: fetching ${task.drvPath} from ${url}`);
      await nix("nix", ["--extra-experimental-features", "nix-command", "copy", "--derivation", "--from", url, task.drvPath, ...options]);
      if (await valid()) break;
    }
    if (!(await valid())) throw new EffectSetupError(`the effect's derivation ${task.drvPath} is neither in this store nor in a cache this agent reads`);
  }
  const shown = await nix("nix", ["--extra-experimental-features", "nix-command", "show-derivation", task.drvPath, ...context.nix.optionArgs]);
  if (shown.code !== 0) throw new EffectSetupError(`nix show-derivation ${task.drvPath} failed: ${shown.stderr.trim().split("\n").at(-1) ?? ""}`);
  const drv = (JSON.parse(shown.stdout) as Record<string, ShownDerivation>)[task.drvPath];
  if (!drv) throw new EffectSetupError(`nix show-derivation did not describe ${task.drvPath}`);
  // Its inputs: what Nimbus built is in the caches (or here); sources may need substituting.
  const inputs = [...Object.keys(drv.inputDrvs ?? {}), ...(drv.inputSrcs ?? [])];
  if (inputs.length > 0) {
    line(`nimbus: realising ${inputs.length} input${inputs.length === 1 ? "" : "s"} of the effect`);
    const realised = await nix("nix-store", ["--realise", ...inputs, ...options, "--no-gc-warning"]);
    if (realised.code !== 0) throw new EffectSetupError(`could not realise the effect's inputs: ${realised.stderr.trim().split("\n").slice(-3).join(" ")}`);
  }
  return { builder: drv.builder, args: drv.args ?? [], env: drv.env ?? {}, inputDrvs: drv.inputDrvs ?? {}, inputSrcs: drv.inputSrcs ?? [] };
}
