/**
 * The fields of GitHub's `push`, `pull_request`, `check_run` and `installation` payloads that
 * Nimbus uses (https://docs.github.com/webhooks/webhook-events-and-payloads). GitHub sends
 * many more; z.object drops them.
 */
import { z } from "zod";
import { CommitSha } from "./job-report.ts";

const Login = z.object({ login: z.string().min(1).max(256) });

/**
 * Where the agent fetches from: GitHub sends https; `nimbus trigger` sends `file://` or a
 * repository's own remote. Never `ext::` or anything git could read as an option.
 */
export const CloneUrl = z
  .string()
  .min(1)
  .max(2048)
  .refine(
    (url) => /^(https?|ssh|git|file):\/\/[^\s]+$/.test(url) || /^[\w.-]+@[\w.-]+:[^\s]+$/.test(url) || /^\/[^\s]*$/.test(url),
    "an http(s), ssh, git or file URL, user@host:path, or an absolute path",
  );

export const WebhookRepository = z.object({
  /** `owner/name` on GitHub; `nimbus trigger` may send a bare name for a local repository. */
  full_name: z.string().min(1).max(256),
  name: z.string().min(1).max(256).optional(),
  owner: Login.optional(),
  clone_url: CloneUrl,
  private: z.boolean().default(false),
  /** GitHub sends it with every push: secrets' `isDefaultBranch` and schedules go by it (docs/effects.md). */
  default_branch: z.string().min(1).max(256).optional(),
});
export type WebhookRepository = z.infer<typeof WebhookRepository>;

/** Present when the event was delivered to a GitHub App. */
const Installation = z.object({ id: z.int().positive() });

export const PushPayload = z.object({
  ref: z.string().min(1).max(512),
  /** All zeros when the push deletes the ref. */
  after: CommitSha,
  deleted: z.boolean().default(false),
  repository: WebhookRepository,
  installation: Installation.optional(),
  sender: Login.optional(),
});
export type PushPayload = z.infer<typeof PushPayload>;

export const PullRequestPayload = z.object({
  action: z.string(),
  number: z.int().positive(),
  pull_request: z.object({
    head: z.object({
      sha: CommitSha,
      ref: z.string(),
      /** null when the fork it came from was deleted. */
      repo: WebhookRepository.nullable(),
    }),
    user: Login,
  }),
  /** The label added or removed, for `labeled` and `unlabeled`. */
  label: z.object({ name: z.string() }).optional(),
  repository: WebhookRepository,
  installation: Installation.optional(),
  sender: Login,
});
export type PullRequestPayload = z.infer<typeof PullRequestPayload>;

export const CheckRunPayload = z.object({
  action: z.string(),
  check_run: z.object({
    id: z.int().positive(),
    name: z.string(),
    head_sha: CommitSha,
    /** Nimbus sets it to the job id. */
    external_id: z.string().nullable(),
    app: z.object({ id: z.int().positive() }),
    /** Empty for a pull request from a fork (GitHub only lists the base repository's). */
    pull_requests: z.array(z.object({ number: z.int().positive() })),
  }),
  requested_action: z.object({ identifier: z.string() }).nullish(),
  repository: WebhookRepository,
  installation: Installation.optional(),
  sender: Login,
});
export type CheckRunPayload = z.infer<typeof CheckRunPayload>;

export const InstallationPayload = z.object({
  action: z.string(),
  installation: z.object({
    id: z.int().positive(),
    /** An enterprise installation may have none. */
    account: Login.nullable(),
  }),
  repositories: z.array(z.object({ full_name: z.string() })).optional(),
  sender: Login,
});
export type InstallationPayload = z.infer<typeof InstallationPayload>;
