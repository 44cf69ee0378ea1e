import * as z from "zod";

// GitHub sends far more fields than these; unknown ones are dropped (z.object strips them).
const Repository = z.object({
  full_name: z.string().min(1).max(256),
  clone_url: z.string().min(1).max(2048),
});

/** `push` event (https://docs.github.com/webhooks/webhook-events-and-payloads#push). */
export const PushEvent = z.object({
  ref: z.string().min(1).max(512),
  after: z.string().regex(/^[0-9a-f]{40}$/, "a full commit sha"),
  before: z.string().optional(),
  deleted: z.boolean().optional(),
  repository: Repository,
  sender: z.object({ login: z.string() }).optional(),
});
export type PushEvent = z.infer<typeof PushEvent>;

/** `pull_request` event; only opened, synchronize and reopened start a job. */
export const PullRequestEvent = z.object({
  action: z.string(),
  number: z.number().int(),
  pull_request: z.object({
    head: z.object({
      sha: z.string().regex(/^[0-9a-f]{40}$/, "a full commit sha"),
      ref: z.string(),
      repo: Repository,
    }),
  }),
  repository: Repository,
  sender: z.object({ login: z.string() }).optional(),
});
export type PullRequestEvent = z.infer<typeof PullRequestEvent>;

export const PULL_REQUEST_ACTIONS = ["opened", "synchronize", "reopened"] as const;
