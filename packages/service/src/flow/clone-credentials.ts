/**
 * The credential a private repository's evaluation is fetched with (docs/github.md, "Tokens"):
 * an installation token for that one repository with `contents: read`, minted when the task is
 * sent to an agent (from the in-memory cache when one lives long enough) and never stored.
 */
import { mintCloneCredential, splitRepository } from "@nimbus/github";
import type { CloneCredential } from "@nimbus/protocol";
import { github } from "../platform/github.ts";
import type { JobItem } from "../storage/items.ts";

/** A public repository needs none; a private one needs App mode (a personal token never leaves the service). */
export async function cloneCredentialFor(job: Pick<JobItem, "repository" | "private" | "onGithub" | "installationId">): Promise<CloneCredential | undefined> {
  if (!job.private || !job.onGithub) return undefined;
  const client = github().reporting?.client;
  if (client?.mode !== "app") {
    throw new Error("private repositories are fetched with a GitHub App's installation token; set up App mode (docs/github.md)");
  }
  const credential = await mintCloneCredential(client, {
    ...splitRepository(job.repository),
    ...(job.installationId !== undefined ? { installationId: job.installationId } : {}),
  });
  if (!credential) return undefined;
  return { username: credential.username, token: credential.reveal(), expiresAt: credential.expiresAt.toISOString() };
}
