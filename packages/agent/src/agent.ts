/**
 * The running agent: reads what it needs to start (token, session, Nix), then lives as the
 * state machine of `agent-machine.ts` driven by `agent-shell.ts` — finding the socket through
 * service-info, reconnecting with back-off until it leaves, running the tasks the service
 * pushes (which keep running across reconnects: the service keeps them for the agent's session,
 * see `session-credential.ts`). Leaving is a sequence: `pause`, let tasks finish (or not),
 * `goodbye`, close (docs/agent.md, "Shutting down").
 */
import { EventEmitter } from "node:events";
import { chmod, mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { NixServePathInfos } from "@nimbus/cache";
import { type AgentInfo, NIMBUS_VERSION } from "@nimbus/protocol";
import { type AgentCaches, builtinCacheArgs, cacheServicesFromEnv, loadAgentCaches } from "./agent-caches.ts";
import { BuiltinCacheChannel } from "./builtin-cache.ts";
import type { AgentEventMap, AgentExit } from "./agent-events.ts";
import { buildAgentInfo } from "./agent-info.ts";
import { AgentShell } from "./agent-shell.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { AgentConfig, ShutdownMode } from "./config.ts";
import { AgentConfigError, AgentFatalError } from "./errors.ts";
import { loadSecretsJson, SecretsConfigError } from "./secrets-json.ts";
import { checkIsolation, type EvaluationPolicy, planIsolation, resolveExecutable } from "./evaluation-isolation.ts";
import { buildHello } from "./hello.ts";
import { readClusterJoinToken } from "./join-token.ts";
import { createLogger, type Logger, type LogSink } from "./log.ts";
import { declineHookArgs } from "./build-hook.ts";
import { NixBuilders } from "./nix-builders.ts";
import { detectNix, NIX_NOT_FOUND_MESSAGE, type NixInfo } from "./nix-info.ts";
import { effectiveNixSettings, type NixEnvironment, nixOptionArgs } from "./nix-options.ts";
import { Outbox, OUTBOX_LIMIT_BYTES } from "./outbox.ts";
import { loadSessionCredential } from "./session-credential.ts";
import { storeIdOf } from "./store-id.ts";
import { TaskRunner } from "./task-runner.ts";
import { encodeAgentMessage, OutgoingMessageError } from "./wire.ts";

export type { AgentErrorEvent, AgentEventMap, AgentExit, Disconnected, ShutdownStep } from "./agent-events.ts";

export interface StartAgentOptions {
  /** Where log lines go (stderr by default); only lines at the config's `logLevel` and above. */
  log?: LogSink;
  /** What Nix reports; `detectNix` runs when absent (with `effectiveNixSettings`). */
  nix?: NixInfo;
  /** Defaults to `os.hostname()`. */
  hostname?: string;
  fetch?: typeof fetch;
  backoff?: BackoffOptions;
  /** Upgrade plus hello → welcome; default 30 s (a cold Lambda can take a few seconds). */
  welcomeTimeoutMs?: number;
  /** How long the agent waits for the tasks it kills to end; default 5 s. */
  taskStopTimeoutMs?: number;
  /** The agent's timers (back-off, heartbeats, deadlines) run on it; the system clock by default. */
  clock?: Clock;
}

export interface StopOptions {
  /**
   * `finish` lets running tasks end (and their results be acknowledged) before leaving, for up
   * to `shutdownTimeoutSeconds`; `hand-back` stops them at once. Default: the config's
   * `shutdown`. `hand-back` while a `finish` is under way switches to it at once.
   */
  mode?: ShutdownMode;
}

export interface RunningAgent {
  /** What `hello` tells the service (changed by `reload()`). */
  readonly info: AgentInfo;
  /** `<workDirectory>/private`: the netrc and signing-key files (mode 0700). */
  readonly privateDirectory: string;
  /** The session id presented in every `hello` (the secret stays in the session file). */
  readonly sessionId: string;
  /** `<workDirectory>/session.json`. */
  readonly sessionPath: string;
  readonly events: EventEmitter<AgentEventMap>;
  /** Settles (never rejects) once the agent is done: after `stop()` or a fatal error. */
  readonly exited: Promise<AgentExit>;
  /** Welcomed and the socket open. */
  connected(): boolean;
  connectionId(): string | undefined;
  /** Ids of the tasks running now. */
  tasksInProgress(): string[];
  /** Ids of the tasks whose final message awaits the service's `result-ack`. */
  unacknowledgedResults(): string[];
  /** The shutdown under way, if any. */
  shuttingDown(): ShutdownMode | undefined;
  /**
   * Leaves as on SIGTERM: `pause`, then (`finish`) waits for running tasks and their
   * acknowledgements or (`hand-back`) stops them, then `goodbye`, close with 1000. Resolves
   * once the agent has exited; never hangs past the shutdown timeout and a few seconds.
   */
  stop(options?: StopOptions): Promise<void>;
  /**
   * Reads binary-caches.json again (SIGHUP in `nimbus agent`): tasks that start from now on
   * use it, and the service gets the new `agent-info`. A file with problems is logged and
   * changes nothing; resolves to whether it was taken.
   */
  reload(): Promise<boolean>;
}

/**
 * Reads the join token and the session (making it on first start), works out the agent info
 * (rejects if any of it fails), then connects in the background. Errors from then on are
 * retried or end `exited` with a fatal error.
 */
export async function startAgent(config: AgentConfig, options: StartAgentOptions = {}): Promise<RunningAgent> {
  const log = createLogger(config.logLevel, options.log);
  const clock = options.clock ?? systemClock;
  const token = await readClusterJoinToken(config.clusterJoinTokenPath);
  const session = await loadSessionCredential(config.workDirectory);
  const nixSettings = effectiveNixSettings(config.nixSettings, config.machineSubstituters);
  const nix = options.nix ?? (await detectNix({ nixSettings }));
  const hostname = options.hostname ?? os.hostname();
  // Secrets the agent writes (netrc, signing keys for a push) live here, never in a task's directory.
  const privateDirectory = path.join(config.workDirectory, "private");
  await mkdir(privateDirectory, { recursive: true, mode: 0o700 });
  await chmod(privateDirectory, 0o700);
  const storeId = await storeIdOf(hostname);
  const buildHook = await declineHookArgs(nix, config.workDirectory);
  const outbox = new Outbox(undefined, (lines, tasks) =>
    log("warn", `dropped ${lines} build log lines of ${tasks} task${tasks === 1 ? "" : "s"} while disconnected: the outbox holds at most ${OUTBOX_LIMIT_BYTES / (1024 * 1024)} MiB`),
  );
  const cacheChannel = new BuiltinCacheChannel(outbox);
  const builtin = config.builtinCache
    ? {
        apiBaseUrl: config.apiBaseUrl,
        sessionId: session.credential.id,
        sessionSecret: session.credential.secret,
        channel: cacheChannel,
        tempDir: path.join(config.workDirectory, "uploads"),
      }
    : undefined;
  const loadCaches = () =>
    loadAgentCaches({
      path: config.binaryCachesPath,
      nixVersion: nix.nixVersion,
      privateDir: privateDirectory,
      machineSubstituters: nix.substituters,
      ...(nix.netrcFile === undefined ? {} : { machineNetrcFile: nix.netrcFile }),
      services: cacheServicesFromEnv(),
      ...(builtin === undefined ? {} : { builtin }),
    });
  let caches: AgentCaches = await loadCaches();
  // Checked at start, read again by each effect (docs/effects.md, "Secrets"): a fix needs no restart.
  if (config.secretsJsonPath !== undefined) await checkSecretsJson(config.secretsJsonPath, log);
  let info = buildAgentInfo(config, nix, hostname, { caches, storeId });
  const evaluation = await prepareEvaluation(config, nix, log);
  const events = new EventEmitter<AgentEventMap>();
  // Builds go to long-lived Nix processes, ended with the agent; what those of a killed agent left goes first.
  const builders = new NixBuilders(path.join(config.workDirectory, "nix-builds"), nix.buildLimits ?? { maxSilentTime: 0, buildTimeout: 0, maxLogSize: 0 }, log);
  await builders.removeLeftovers();
  const nixEnvironment = (): NixEnvironment => ({
    optionArgs: [...nixOptionArgs(nixSettings), ...caches.optionArgs, ...builtinCacheArgs(caches, cacheChannel.publicKey)],
    credentialArgs: caches.credentialArgs,
    systems: info.systems,
    buildFeatures: [...new Set([...info.systemFeatures, ...info.mandatoryFeatures])],
    buildArgs: buildHook.args,
    builders,
  });
  // One Nix for the pushes' path registration, ended with the agent.
  const pathInfos = new NixServePathInfos();
  const runner: TaskRunner = new TaskRunner({
    workDirectory: config.workDirectory,
    apiBaseUrl: config.apiBaseUrl,
    nix: nixEnvironment,
    caches: () => ({ ...caches, storeId, pathInfos }),
    evaluation,
    effects: { ...config.effects, secretsJsonPath: config.secretsJsonPath, bwrap: "bwrap" },
    link: outbox,
    log,
    clock,
    onStarted: (event) => events.emit("task-started", event),
    onFinished: (event) => events.emit("task-finished", event),
    onChange: () => shell.tasksChanged(),
    onAcks: (progressed) => shell.acksChanged(progressed),
  });
  const hello = () => buildHello(info, session.credential, runner.held());
  try {
    encodeAgentMessage(hello());
  } catch (err) {
    if (!(err instanceof OutgoingMessageError)) throw err;
    throw new AgentConfigError(`${config.source}: ${err.message} — make "labels" smaller, or list fewer caches or keys in binary-caches.json`);
  }

  const shell: AgentShell = new AgentShell({
    apiBaseUrl: config.apiBaseUrl,
    settings: { heartbeatIntervalMs: config.heartbeatIntervalMs, shutdownTimeoutMs: config.shutdownTimeoutMs, ackTimeoutMs: config.ackTimeoutMs },
    connection: {
      token,
      tokenPath: config.clusterJoinTokenPath,
      sessionPath: session.path,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      welcomeTimeoutMs: options.welcomeTimeoutMs ?? 30_000,
    },
    hello,
    runner,
    outbox,
    backoff: new Backoff(options.backoff),
    clock,
    log,
    events,
    fetch: options.fetch,
    taskStopTimeoutMs: options.taskStopTimeoutMs ?? 5_000,
    cache: cacheChannel,
  });

  log(
    "info",
    `agent ${info.hostname} (Nimbus ${NIMBUS_VERSION}, Nix ${info.nixVersion}): systems ${info.systems.join(" ")}; ` +
      `features ${info.systemFeatures.join(" ") || "(none)"}; mandatory ${info.mandatoryFeatures.join(" ") || "(none)"}; ` +
      `${info.concurrentTasks} concurrent tasks`,
  );
  log("info", `session ${session.credential.id} (${session.created ? "new, written to" : "from"} ${session.path})`);
  if (session.warning !== undefined) log("warn", session.warning);
  logCaches(log, caches, info, storeId);
  log("debug", buildHook.reason === undefined ? "builds decline Nix's build hook at once (no remote builders)" : `Nix's build hook stays: ${buildHook.reason}`);
  void shell.exited.finally(() => {
    pathInfos.close();
    builders.close();
  });
  shell.start();

  return {
    get info() {
      return info;
    },
    privateDirectory,
    sessionId: session.credential.id,
    sessionPath: session.path,
    events,
    exited: shell.exited,
    connected: () => shell.connected,
    connectionId: () => shell.connectionId,
    tasksInProgress: () => runner.inProgress(),
    unacknowledgedResults: () => runner.results.ids(),
    shuttingDown: () => shell.shuttingDown,
    stop: async (stopOptions = {}) => {
      shell.stop(stopOptions.mode ?? config.shutdown);
      await shell.exited;
    },
    reload: async () => {
      let next: AgentCaches;
      let nextInfo: AgentInfo;
      try {
        next = await loadCaches();
        nextInfo = buildAgentInfo(config, nix, hostname, { caches: next, storeId });
        encodeAgentMessage({ type: "agent-info", agent: nextInfo });
      } catch (err) {
        if (!(err instanceof AgentConfigError || err instanceof OutgoingMessageError || err instanceof AgentFatalError)) throw err;
        log("error", `binary caches not reloaded, the ones loaded before stay in use: ${err.message}`);
        return false;
      }
      caches = next;
      const before = JSON.stringify(info);
      info = nextInfo;
      logCaches(log, caches, info, storeId);
      // Not connected: the next hello carries it.
      if (JSON.stringify(info) !== before && outbox.sendNow({ type: "agent-info", agent: info })) log("info", "sent the changed agent info to the service");
      return true;
    },
  };
}

function logCaches(log: Logger, caches: AgentCaches, info: AgentInfo, storeId: string): void {
  for (const warning of caches.warnings) log("warn", warning);
  const configured = caches.info.map((c) => `${c.name} (${c.kind}${c.push ? ", push" : ""})`).join(", ");
  log("info", `binary caches: ${configured || "none configured"}; substituters: ${info.substituters.join(" ") || "none"}; store ${storeId}`);
}

/**
 * How this agent's evaluations are confined (docs/security.md): the paths to hide, worked out
 * once, and a check that an evaluator can run that way here. Also says what leaves builds less
 * confined than they could be.
 */
async function prepareEvaluation(config: AgentConfig, nix: NixInfo, log: Logger): Promise<EvaluationPolicy> {
  const nixInstantiate = resolveExecutable("nix-instantiate");
  if (nixInstantiate === undefined) throw new AgentFatalError("nix-not-found", `${NIX_NOT_FOUND_MESSAGE} (nix-instantiate is not on PATH)`);
  const nixSecretFiles = [
    ...(nix.credentialFiles ?? []),
    ...(config.nixSettings["netrc-file"] ? [config.nixSettings["netrc-file"]] : []),
    ...(config.nixSettings["secret-key-files"]?.split(/\s+/).filter((f) => f !== "") ?? []),
  ];
  const plan = planIsolation(config, { nixSecretFiles, evaluatorBinary: nixInstantiate });
  const scratch = path.join(config.workDirectory, "eval", ".isolation-check");
  await mkdir(scratch, { recursive: true });
  try {
    await checkIsolation(plan, nixInstantiate, scratch);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  if (plan.mode === "none") {
    log("warn", 'evaluationIsolation = "none": evaluated code is held only by Nix\'s restricted mode, which cannot keep this agent\'s files from it (docs/security.md)');
  } else {
    log("debug", `evaluations run in their own namespaces${plan.network ? "" : " without network"}; hidden from them: ${plan.hidden.map((h) => h.path).join(" ")}`);
  }
  if (nix.sandbox === false) {
    log("info", "Nix's sandbox is off (sandbox = false in nix.conf): builders run as Nix's build users and can read what those users may read; enable the sandbox where the machine supports it (docs/security.md)");
  }
  if (process.getuid?.() === 0 && nix.buildUsersGroup === "") {
    log("warn", "Nix has no build-users-group: builders run as root and can read this agent's token and session; set build-users-group = nixbld in nix.conf (docs/security.md)");
  }
  return {
    plan,
    nixInstantiate,
    allowedUris: config.evaluation.allowedUris,
    timeoutMs: config.evaluation.timeoutMs,
    maxAttributes: config.evaluation.maxAttributes,
    allowLocalRepositories: config.allowLocalRepositories,
  };
}

/**
 * A `secrets.json` that cannot be used is logged at start, naming the secret and the key; each
 * effect reads it again, so effects that ask for secrets fail (saying why) until it is fixed.
 */
async function checkSecretsJson(filePath: string, log: Logger): Promise<void> {
  try {
    const secrets = await loadSecretsJson(filePath);
    log("info", `secrets.json: ${secrets.size} secret${secrets.size === 1 ? "" : "s"} for effects (${filePath})`);
  } catch (err) {
    if (!(err instanceof SecretsConfigError)) throw err;
    for (const line of err.message.split("\n")) log("warn", `${line} — effects that ask for secrets fail until it is fixed`);
  }
}
