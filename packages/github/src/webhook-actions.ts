/**
 * What a GitHub webhook asks Nimbus to do: a pure function of the event name, the payload and
 * the stack's policy. The service verifies the signature first and carries the action out.
 */
import type { z } from "zod";
import { APPROVE_ACTION } from "./check-run.ts";
import type { GithubConfig } from "./config.ts";
import { RepositoryName } from "./job-report.ts";
import {
  CheckRunPayload,
  InstallationPayload,
  PullRequestPayload,
  PushPayload,
  type WebhookRepository,
} from "./webhook-events.ts";

export interface WebhookPolicy {
  /** Build pushed tags, or only branches. */
  tags: "build" | "ignore";
  /**
   * Pull requests whose head is a branch of the repository itself: its push already builds
   * the same commit, so by default the pull request adds no second job.
   */
  sameRepositoryPullRequests: "build" | "ignore";
  /** The label that approves a fork's head commit (docs/github.md). */
  approvalLabel: string;
  /** The App's id in App mode: check-run events of other apps are not Nimbus's. */
  appId?: number;
}

export const DEFAULT_APPROVAL_LABEL = "nimbus-approved";

export const DEFAULT_WEBHOOK_POLICY: WebhookPolicy = {
  tags: "build",
  sameRepositoryPullRequests: "ignore",
  approvalLabel: DEFAULT_APPROVAL_LABEL,
};

/** The policy for a stack: the defaults, with the App's id in App mode (check-run events are only ours then). */
export function webhookPolicy(config: GithubConfig, overrides: Partial<Omit<WebhookPolicy, "appId">> = {}): WebhookPolicy {
  return { ...DEFAULT_WEBHOOK_POLICY, ...overrides, ...(config.mode === "app" ? { appId: config.appId } : {}) };
}

/** Everything the service needs to create a job, and the GitHub client to reach the repository. */
export interface JobStart {
  /** `owner/name` of the repository the job reports to (a pull request's base repository). */
  repository: string;
  owner: string;
  name: string;
  /** Where the commit can be fetched: the base repository, also for a fork (GitHub keeps `refs/pull/N/head` there). */
  cloneUrl: string;
  ref: string;
  commit: string;
  /** A private repository needs a clone credential (clone-credential.ts). */
  private: boolean;
  /**
   * The repository is `owner/name`, so reports can go to GitHub; false for what `nimbus
   * trigger` sends about a local repository.
   */
  onGithub: boolean;
  trigger: "push" | "pull_request";
  pullRequest?: number;
  /** The commit comes from a fork: evaluated only once approved, and never with secrets or effects. */
  fork: boolean;
  /** Who pushed, or who opened the pull request. */
  sender?: string;
  /** The App installation that delivered the event (absent in token mode). */
  installationId?: number;
  /** The repository's default branch, when the event says it. */
  defaultBranch?: string;
}

export type InstallationChange = "created" | "deleted" | "suspend" | "unsuspend" | "new_permissions_accepted";
const INSTALLATION_CHANGES: readonly string[] = ["created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"];

export type WebhookAction =
  | { type: "start-job"; job: JobStart }
  /** A fork's pull request: create the job held, and report it waiting for approval. */
  | { type: "hold-fork"; job: JobStart; author: string; reason: string }
  /** Someone asks to run a held fork commit; fork-approval.ts decides whether they may. */
  | {
      type: "approve-fork";
      repository: string;
      /** The approval is for this commit only: a later push needs a new approval. */
      commit: string;
      approver: string;
      via: "label" | "check-run";
      pullRequest?: number;
      /** For the check-run button: the held job's id (the run's external_id). */
      jobId?: string;
      installationId?: number;
    }
  | { type: "cancel-pull-request"; repository: string; pullRequest: number; reason: string }
  /** The check run's "Re-run" button: a new job for the same commit, rebuilding failures. */
  | { type: "rerun-job"; repository: string; jobId: string; rebuildFailures: true; requestedBy: string; installationId?: number }
  /** Nothing to store: tokens are minted on demand; drop cached ones of a deleted or suspended installation. */
  | { type: "installation"; change: InstallationChange; installationId: number; account?: string; repositories: string[] }
  | { type: "ignore"; reason: string };

/** The payload of an event Nimbus acts on is not what GitHub sends; the message names the fields. */
export class WebhookPayloadError extends Error {
  override readonly name = "WebhookPayloadError";
}

const NULL_SHA = "0".repeat(40);
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
const PULL_REQUEST_BUILDS: readonly string[] = ["opened", "synchronize", "reopened"];

export function classifyWebhook(event: string, payload: unknown, policy: WebhookPolicy = DEFAULT_WEBHOOK_POLICY): WebhookAction {
  switch (event) {
    case "push":
      return classifyPush(parse(PushPayload, payload, event), policy);
    case "pull_request":
      return classifyPullRequest(payload, policy);
    case "check_run":
      return classifyCheckRun(payload, policy);
    case "installation":
      return classifyInstallation(payload);
    case "ping":
      return ignore("ping: the webhook is set up and its secret matches");
    default:
      return ignore(`event "${event}" is not one Nimbus uses (push, pull_request, check_run, installation)`);
  }
}

const ignore = (reason: string): WebhookAction => ({ type: "ignore", reason });

function parse<T extends z.ZodType>(schema: T, payload: unknown, event: string): z.infer<T> {
  const parsed = schema.safeParse(payload);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(payload)"}: ${i.message}`).join("; ");
  throw new WebhookPayloadError(`invalid ${event} payload: ${issues}`);
}

/** Read before validating, so an action Nimbus ignores need not match the schema. */
function actionOf(payload: unknown): string | undefined {
  const action = typeof payload === "object" && payload !== null ? (payload as { action?: unknown }).action : undefined;
  return typeof action === "string" ? action : undefined;
}

function classifyPush(push: PushPayload, policy: WebhookPolicy): WebhookAction {
  if (push.deleted || push.after === NULL_SHA) return ignore(`push deletes ${push.ref}: nothing to build`);
  const isTag = push.ref.startsWith("refs/tags/");
  if (!isTag && !push.ref.startsWith("refs/heads/")) return ignore(`push to ${push.ref}: only branches and tags are built`);
  if (isTag && policy.tags === "ignore") return ignore(`push of tag ${push.ref}: this stack builds branches only`);
  return {
    type: "start-job",
    job: {
      ...where(push.repository),
      ref: push.ref,
      commit: push.after,
      trigger: "push",
      fork: false,
      ...(push.sender ? { sender: push.sender.login } : {}),
      ...(push.installation ? { installationId: push.installation.id } : {}),
    },
  };
}

function where(repository: WebhookRepository) {
  const [owner = "", name = ""] = repository.full_name.split("/");
  return {
    repository: repository.full_name,
    owner: repository.owner?.login ?? owner,
    name: repository.name ?? name,
    cloneUrl: repository.clone_url,
    private: repository.private,
    ...(repository.default_branch ? { defaultBranch: repository.default_branch } : {}),
    onGithub: RepositoryName.safeParse(repository.full_name).success,
  };
}

function classifyPullRequest(payload: unknown, policy: WebhookPolicy): WebhookAction {
  const action = actionOf(payload);
  const acted = [...PULL_REQUEST_BUILDS, "closed", "labeled"];
  if (action === undefined || !acted.includes(action)) {
    return ignore(`pull_request action "${action ?? "(none)"}" asks nothing of Nimbus (${acted.join(", ")} do)`);
  }
  const pr = parse(PullRequestPayload, payload, "pull_request");
  const fork = pr.pull_request.head.repo?.full_name !== pr.repository.full_name;
  const installation = pr.installation ? { installationId: pr.installation.id } : {};

  if (action === "closed") {
    return {
      type: "cancel-pull-request",
      repository: pr.repository.full_name,
      pullRequest: pr.number,
      reason: `pull request #${pr.number} was closed`,
    };
  }
  if (action === "labeled") {
    if (pr.label?.name !== policy.approvalLabel) return ignore(`label "${pr.label?.name ?? ""}" means nothing to Nimbus (only "${policy.approvalLabel}" does)`);
    if (!fork) return ignore(`label "${policy.approvalLabel}" only approves pull requests from forks; #${pr.number} is from this repository`);
    return {
      type: "approve-fork",
      repository: pr.repository.full_name,
      // The head as GitHub saw it when the label was added: that commit, and no later one.
      commit: pr.pull_request.head.sha,
      approver: pr.sender.login,
      via: "label",
      pullRequest: pr.number,
      ...installation,
    };
  }

  if (!fork && policy.sameRepositoryPullRequests === "ignore") {
    return ignore(`pull request #${pr.number} is from branch ${pr.pull_request.head.ref} of this repository: its push builds the commit`);
  }
  const job: JobStart = {
    ...where(pr.repository),
    ref: `refs/pull/${pr.number}/head`,
    commit: pr.pull_request.head.sha,
    trigger: "pull_request",
    pullRequest: pr.number,
    fork,
    sender: pr.sender.login,
    ...installation,
  };
  if (!fork) return { type: "start-job", job };
  const from = pr.pull_request.head.repo?.full_name ?? "a deleted fork";
  return {
    type: "hold-fork",
    job,
    author: pr.pull_request.user.login,
    reason: `Pull request #${pr.number} comes from ${from}: its code runs only once someone with write access approves this commit.`,
  };
}

function classifyCheckRun(payload: unknown, policy: WebhookPolicy): WebhookAction {
  const action = actionOf(payload);
  if (action !== "rerequested" && action !== "requested_action") {
    return ignore(`check_run action "${action ?? "(none)"}" asks nothing of Nimbus (rerequested and requested_action do)`);
  }
  if (policy.appId === undefined) return ignore("check runs are Nimbus's only in App mode; this stack reports commit statuses");
  const event = parse(CheckRunPayload, payload, "check_run");
  const run = event.check_run;
  if (run.app.id !== policy.appId) return ignore(`check run "${run.name}" belongs to app ${run.app.id}, not Nimbus (app ${policy.appId})`);
  const jobId = run.external_id ?? "";
  if (!JOB_ID.test(jobId)) return ignore(`check run "${run.name}" names no Nimbus job (external_id "${jobId}")`);
  const installation = event.installation ? { installationId: event.installation.id } : {};

  if (action === "rerequested") {
    return { type: "rerun-job", repository: event.repository.full_name, jobId, rebuildFailures: true, requestedBy: event.sender.login, ...installation };
  }
  const identifier = event.requested_action?.identifier;
  if (identifier !== APPROVE_ACTION) return ignore(`check run action "${identifier ?? ""}" is not one Nimbus offers`);
  return {
    type: "approve-fork",
    repository: event.repository.full_name,
    commit: run.head_sha,
    approver: event.sender.login,
    via: "check-run",
    jobId,
    ...(run.pull_requests[0] ? { pullRequest: run.pull_requests[0].number } : {}),
    ...installation,
  };
}

function classifyInstallation(payload: unknown): WebhookAction {
  const action = actionOf(payload);
  if (action === undefined || !INSTALLATION_CHANGES.includes(action)) {
    return ignore(`installation action "${action ?? "(none)"}" asks nothing of Nimbus`);
  }
  const event = parse(InstallationPayload, payload, "installation");
  return {
    type: "installation",
    change: action as InstallationChange,
    installationId: event.installation.id,
    ...(event.installation.account ? { account: event.installation.account.login } : {}),
    repositories: (event.repositories ?? []).map((r) => r.full_name),
  };
}
