import { createHmac, randomUUID } from "node:crypto";

/** A commit pushed, as `nimbus trigger` (and tests, and the bench) describe it to GitHub's webhook. */
export interface PushDescription {
  ref: string;
  commit: string;
  /** `owner/name`. */
  fullName: string;
  cloneUrl: string;
  sender: string;
  /** The repository's default branch (GitHub's `repository.default_branch`); absent: not sent. */
  defaultBranch?: string;
  /** When it was pushed (default: now), as GitHub's `repository.pushed_at`: two pushes of one commit are two events. */
  pushedAt?: Date;
  /**
   * A trigger's own id, which Nimbus does not read: it makes each `nimbus trigger` a push of its
   * own, as `pushed_at` counts whole seconds and two triggers of one commit may fall in one.
   */
  triggerId?: string;
}

/** The body of a GitHub `push` event for that commit (the fields Nimbus reads, and a few more GitHub always sends). */
export function pushPayload(push: PushDescription): string {
  return JSON.stringify({
    ref: push.ref,
    // What GitHub sends as `before` for a ref it has not seen; Nimbus does not read it.
    before: "0".repeat(40),
    after: push.commit,
    created: false,
    deleted: false,
    forced: false,
    repository: {
      full_name: push.fullName,
      name: push.fullName.split("/").pop(),
      clone_url: push.cloneUrl,
      ...(push.defaultBranch ? { default_branch: push.defaultBranch } : {}),
      // Nimbus does not read it; it makes this push's body its own (a replayed body is answered with its first job).
      pushed_at: Math.floor((push.pushedAt ?? new Date()).getTime() / 1000),
    },
    sender: { login: push.sender },
    head_commit: { id: push.commit },
    ...(push.triggerId ? { nimbus_trigger: push.triggerId } : {}),
  });
}

/** POSTs a webhook exactly as GitHub does: `X-GitHub-Event`, a delivery id, and the body's HMAC-SHA256. */
export function postGithubWebhook(baseUrl: string, secret: string, event: string, body: string, deliveryId: string = randomUUID()) {
  return fetch(`${baseUrl}/webhooks/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": deliveryId,
      "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`,
    },
    body,
  });
}

/**
 * Sends a signed push for `commit` and returns the status and JSON answer: for tests and the
 * bench (a `file:///repos/<name>` clone URL unless given; nothing clones it there).
 */
export async function sendSignedPush(
  baseUrl: string,
  secret: string,
  push: { repository: string; commit: string; ref?: string; cloneUrl?: string; sender?: string; defaultBranch?: string },
  deliveryId?: string,
): Promise<{ status: number; body: any }> {
  const body = pushPayload({
    ref: push.ref ?? "refs/heads/main",
    commit: push.commit,
    fullName: push.repository,
    cloneUrl: push.cloneUrl ?? `file:///repos/${push.repository}`,
    sender: push.sender ?? "nimbus",
    defaultBranch: push.defaultBranch ?? "main",
  });
  const response = await postGithubWebhook(baseUrl, secret, "push", body, deliveryId);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}
