import { createHmac, randomUUID } from "node:crypto";

/** Sends a GitHub-shaped push webhook, signed with the stack's secret, as GitHub would. */
export async function sendPush(
  baseUrl: string,
  secret: string,
  push: { repository: string; commit: string; ref?: string; cloneUrl?: string },
  deliveryId: string = randomUUID(),
): Promise<{ status: number; body: any }> {
  const body = JSON.stringify({
    ref: push.ref ?? "refs/heads/main",
    before: "0".repeat(40),
    after: push.commit,
    deleted: false,
    repository: { full_name: push.repository, clone_url: push.cloneUrl ?? `file:///repos/${push.repository}` },
    sender: { login: "nimbus-bench" },
  });
  const response = await fetch(`${baseUrl}/webhooks/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": deliveryId,
      "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`,
    },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}
