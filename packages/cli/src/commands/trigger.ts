import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { basename, join, resolve } from "node:path";
import { promisify } from "node:util";
import { ApiError, WebhookAccepted, WebhookIgnored } from "@nimbus/protocol";
import type { Command } from "commander";
import { CliError } from "../cli-error.ts";
import { postGithubWebhook, pushPayload } from "../github-push.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

const run = promisify(execFile);
const FULL_SHA = /^[0-9a-f]{40}$/;

interface TriggerOptions {
  ref?: string;
  rev?: string;
  defaultBranch: string;
  webhookSecret?: string;
}

/** The commit to build and how GitHub would describe its repository. */
interface Push {
  ref: string;
  commit: string;
  fullName: string;
  cloneUrl: string;
}

export function registerTriggerCommand(program: Command) {
  program
    .command("trigger <repository>")
    .description("send a signed GitHub push webhook for a commit of a git repository (path or URL); prints the job id")
    .option("--ref <ref>", "the branch or ref pushed (default: a path's current branch, else refs/heads/main)")
    .option("--rev <sha>", "the commit (default: the ref's head)")
    .option("--default-branch <branch>", "the repository's default branch, as GitHub would say it (secrets' isDefaultBranch, schedules)", "main")
    .option("--webhook-secret <secret>", "the stack's GithubWebhookSecret, for --api (default: NIMBUS_WEBHOOK_SECRET)")
    .action(async (repository: string, options: TriggerOptions, command: Command) => {
      const globals = command.optsWithGlobals<TargetOptions>();
      const target = resolveTarget(globals);
      const secret = options.webhookSecret ?? process.env.NIMBUS_WEBHOOK_SECRET ?? (globals.api ? undefined : localWebhookSecret(target.dataDir));
      if (!secret) {
        throw new CliError(`no webhook secret: pass --webhook-secret or set NIMBUS_WEBHOOK_SECRET (locally it is GithubWebhookSecret in ${target.dataDir}/secrets.json)`);
      }
      const push = isLocalPath(repository) ? await localPush(repository, options) : await remotePush(repository, options);
      const jobId = await sendPush(target.baseUrl, secret, { ...push, defaultBranch: options.defaultBranch });
      process.stdout.write(`${jobId}\n`);
    });
}

function localWebhookSecret(dataDir: string): string | undefined {
  try {
    const secrets = JSON.parse(readFileSync(join(dataDir, "secrets.json"), "utf8")) as Record<string, unknown>;
    return typeof secrets.GithubWebhookSecret === "string" ? secrets.GithubWebhookSecret : undefined;
  } catch {
    return undefined;
  }
}

/** URLs (`https://…`, `file://…`) and scp-like `git@host:owner/repo` are remote; an existing path is local. */
function isLocalPath(repository: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repository)) return false;
  if (existsSync(repository)) return true;
  if (/^[\w.-]+@[\w.-]+:/.test(repository)) return false;
  throw new CliError(`${repository} is neither a directory nor a git URL`);
}

async function git(args: string[], what: string): Promise<string> {
  try {
    return (await run("git", args, { encoding: "utf8" })).stdout.trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CliError("git is not installed — install it (e.g. `apt-get install -y git`)");
    const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim().split("\n").pop();
    throw new CliError(stderr ? `${what}: ${stderr}` : what);
  }
}

async function localPush(path: string, options: TriggerOptions): Promise<Push> {
  const top = await git(["-C", path, "rev-parse", "--show-toplevel"], `${path} is not a git repository`);
  let ref = options.ref;
  if (ref === undefined) {
    ref = await git(["-C", top, "symbolic-ref", "-q", "HEAD"], `${top} has a detached HEAD — pass --ref`);
  } else if (!ref.startsWith("refs/")) {
    const full = await git(["-C", top, "rev-parse", "--symbolic-full-name", ref], `no ref ${ref} in ${top}`);
    // A name git cannot expand (say, a branch only on a remote) is taken as a branch name.
    ref = full.startsWith("refs/") ? full : `refs/heads/${ref}`;
  }
  const revision = options.rev ?? ref;
  const commit = await git(["-C", top, "rev-parse", "--verify", "--quiet", `${revision}^{commit}`], `no commit ${revision} in ${top}`);
  return { ref, commit, fullName: basename(top), cloneUrl: `file://${resolve(top)}` };
}

async function remotePush(url: string, options: TriggerOptions): Promise<Push> {
  const ref = !options.ref ? "refs/heads/main" : options.ref.startsWith("refs/") ? options.ref : `refs/heads/${options.ref}`;
  let commit = options.rev;
  if (commit !== undefined && !FULL_SHA.test(commit)) {
    throw new CliError(`--rev must be a full 40-hex commit sha for a URL (${commit} cannot be resolved without a clone)`);
  }
  if (commit === undefined) {
    const listed = await git(["ls-remote", url, ref], `cannot list ${url}`);
    const line = listed.split("\n").find((l) => l.endsWith(`\t${ref}`));
    if (!line) throw new CliError(`${url} has no ${ref} — pass --ref (e.g. --ref master)`);
    commit = line.split("\t")[0]!;
  }
  const fullName = url.replace(/\/+$/, "").replace(/\.git$/, "").split(/[/:]/).filter(Boolean).slice(-2).join("/");
  return { ref, commit, fullName, cloneUrl: url };
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "nimbus";
  }
}

/** Posts what GitHub would post for this push, to the path GitHub posts to; returns the job id. */
async function sendPush(baseUrl: string, secret: string, push: Push & { defaultBranch: string }): Promise<string> {
  const body = pushPayload({ ...push, sender: osUser(), triggerId: randomUUID() });
  let response: Response;
  try {
    response = await postGithubWebhook(baseUrl, secret, "push", body);
  } catch {
    throw new CliError(`no Nimbus API at ${baseUrl} — start the local stack with \`npm start\`, or pass --api URL`);
  }
  const value: unknown = await response.json().catch(() => undefined);
  const accepted = WebhookAccepted.safeParse(value);
  if (response.ok && accepted.success) return accepted.data.jobId;
  const ignored = WebhookIgnored.safeParse(value);
  if (ignored.success) throw new CliError(`the push was ignored: ${ignored.data.ignored}`);
  const error = ApiError.safeParse(value);
  throw new CliError(error.success ? error.data.error.message : `POST /webhooks/github: HTTP ${response.status}`);
}
