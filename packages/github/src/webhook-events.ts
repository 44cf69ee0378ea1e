/**
 * The fields of GitHub's `push`, `pull_request`, `check_run` and `installation` payloads that
 * Nimbus uses (https://docs.github.com/webhooks/webhook-events-and-payloads). GitHub sends
 * many more; z.object drops them.
 */
import { z } from "zod";
import { CommitSha } from "./job-report.ts";

const Login = z.object({ login: z.string().min(1).max(256) });

export const WebhookRepository = z.object({
  full_name: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "owner/name"),
  name: z.string().min(1).max(256),
  owner: Login,
  clone_url: z.url({ protocol: /^https?$/ }).max(2048),
  private: z.boolean(),
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
