/** Getting exactly one commit of a repository onto disk for evaluation. */
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { runProcess } from "./process.ts";

/** HTTPS credentials for one fetch (a private repository's installation token: docs/github.md). */
export interface FetchCredential {
  username: string;
  token: string;
  /**
   * A directory of its own, outside anything the evaluator sees (the evaluator gets the task's
   * directory only): the credential is written there for git's askpass helper, mode 0600 in
   * 0700, and the directory is removed as soon as the fetch is over.
   */
  directory: string;
}

export interface CheckoutOptions {
  /** file://, https://… or a local path. */
  cloneUrl: string;
  commit: string;
  /** Fetched when the commit is not reachable otherwise (e.g. a pull request's ref). */
  ref: string | undefined;
  directory: string;
  signal: AbortSignal;
  /** Whether `file://` URLs and local paths may be fetched (only the local stack's agents). */
  allowLocal: boolean;
  /** Given to git by an askpass helper, never in the URL, the command line or the environment. */
  credential?: FetchCredential;
}

/** The commit could not be fetched or checked out; the message is safe to show (no credentials). */
export class CheckoutError extends Error {
  override readonly name = "CheckoutError";
}

/** Git must never wait for a password on a terminal nobody watches. */
const GIT_ENV: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "" };

/** The transports git may use: a repository elsewhere, never the agent's own disk (unless allowed). */
const REMOTE_PROTOCOLS = ["https", "ssh"];

/** `https`, `ssh` (also for scp-like `git@host:path`), `file` (also for a local path), … */
export function cloneUrlProtocol(cloneUrl: string): string {
  // `<transport>::<address>` names a remote helper (`ext::` runs a command).
  const helper = /^([a-z][a-z0-9+.-]*)::/i.exec(cloneUrl)?.[1]?.toLowerCase();
  if (helper !== undefined) return helper;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(cloneUrl)?.[1]?.toLowerCase();
  if (scheme !== undefined) return scheme === "git+ssh" || scheme === "ssh+git" ? "ssh" : scheme;
  // Git's rule: a colon before the first slash makes it scp-like ssh; anything else is a path.
  return /^[^/]*:/.test(cloneUrl) ? "ssh" : "file";
}

/**
 * `git init`, then a shallow fetch of the commit itself (one round trip; GitHub and local
 * repositories allow it); if the server refuses that, the ref and all branches and tags.
 * Then `git checkout <commit>` (detached). No submodules.
 */
export async function checkoutCommit(options: CheckoutOptions): Promise<void> {
  const { cloneUrl, directory } = options;
  const allowed = options.allowLocal ? [...REMOTE_PROTOCOLS, "file"] : REMOTE_PROTOCOLS;
  const protocol = cloneUrlProtocol(cloneUrl);
  if (!allowed.includes(protocol)) {
    throw new CheckoutError(
      protocol === "file"
        ? `${redactCredentials(cloneUrl)} is a repository on the agent's own disk: this agent fetches only https:// and ssh repositories (allowLocalRepositories is off)`
        : `${redactCredentials(cloneUrl)}: git over ${protocol} is not allowed (only ${allowed.join(", ")})`,
    );
  }
  await mkdir(directory, { recursive: true });
  const { credential } = options;
  const askpass = credential ? await writeAskpass(credential) : undefined;
  try {
    await fetchAndCheckout(options, allowed, askpass, (text) => redactCredentials(credential ? text.split(credential.token).join("***") : text));
  } finally {
    if (credential) await rm(credential.directory, { recursive: true, force: true });
  }
}

/**
 * An askpass helper for git: it prints the user name or the token from files beside it. Git
 * runs it when the server asks for credentials; the token is in no URL, argument or variable.
 */
async function writeAskpass(credential: FetchCredential): Promise<string> {
  const dir = credential.directory;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const quote = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;
  await writeFile(path.join(dir, "username"), credential.username, { mode: 0o600 });
  await writeFile(path.join(dir, "password"), credential.token, { mode: 0o600 });
  const script = path.join(dir, "askpass");
  await writeFile(
    script,
    `#!/bin/sh\ncase "$1" in\n  [Uu]sername*) exec cat ${quote(path.join(dir, "username"))} ;;\n  *) exec cat ${quote(path.join(dir, "password"))} ;;\nesac\n`,
    { mode: 0o700 },
  );
  return script;
}

async function fetchAndCheckout(options: CheckoutOptions, allowed: string[], askpass: string | undefined, redact: (text: string) => string): Promise<void> {
  const { cloneUrl, commit, directory, signal } = options;
  // Git itself holds to the same list (redirects, alternates and the like included).
  const env = { ...GIT_ENV, GIT_ALLOW_PROTOCOL: allowed.join(":"), ...(askpass ? { GIT_ASKPASS: askpass } : {}) };
  // No credential helper of the machine's: one could store the token (credential.helper=store).
  const config = askpass ? ["-c", "credential.helper="] : [];
  // Every URL and ref goes after "--": a value starting with "-" must not become an option.
  const git = async (args: string[]) => {
    const result = await runProcess("git", [...config, "-C", directory, ...args], { env, signal });
    if (signal.aborted) throw signal.reason;
    return result;
  };
  const failed = (what: string, stderr: string) => new CheckoutError(`${what}: ${redact(lastLines(stderr)) || "git gave no reason"}`);

  const init = await git(["init", "--quiet"]);
  if (init.code !== 0) throw failed("git init failed", init.stderr);

  const shallow = await git(["fetch", "--quiet", "--no-tags", "--depth", "1", "--", cloneUrl, commit]);
  if (shallow.code !== 0) {
    const full = await git(["fetch", "--quiet", "--", cloneUrl, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]);
    if (full.code !== 0) throw failed(`cannot fetch ${redactCredentials(cloneUrl)}`, full.stderr);
    const present = async () => (await git(["cat-file", "-e", `${commit}^{commit}`])).code === 0;
    // A pull request's commit is only under its own ref; a ref that is gone is no error yet.
    if (!(await present()) && options.ref) await git(["fetch", "--quiet", "--", cloneUrl, options.ref]);
    if (!(await present())) {
      throw new CheckoutError(`commit ${commit} is not in ${redactCredentials(cloneUrl)} (fetching it by id: ${redact(lastLines(shallow.stderr))})`);
    }
  }
  const checkout = await git(["-c", "advice.detachedHead=false", "checkout", "--quiet", commit]);
  if (checkout.code !== 0) throw failed(`cannot check out ${commit}`, checkout.stderr);
}

/** `https://user:token@host/…` → `https://***@host/…`, wherever it appears. */
export function redactCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, "$1***@");
}

function lastLines(stderr: string, count = 3): string {
  return stderr.trim().split("\n").slice(-count).join("\n").trim();
}
