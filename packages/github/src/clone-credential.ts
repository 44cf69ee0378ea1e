/**
 * The credential an evaluate task carries to fetch a private repository: an installation
 * token for that one repository with `contents: read`, living an hour at most. It prints as
 * `[redacted]` wherever it is logged or serialised by accident; only `reveal()` gives the token.
 */
import { inspect } from "node:util";
import type { GithubClient, RepositoryRef } from "./client.ts";
import type { Permissions } from "./token-cache.ts";

export const CLONE_PERMISSIONS: Permissions = { contents: "read" };
/** A clone credential lives at least this long when handed out: the fetch starts within it. */
export const CLONE_MIN_VALIDITY_MS = 30 * 60_000;

export class CloneCredential {
  /** What GitHub expects as the user name with an installation token over HTTPS. */
  readonly username = "x-access-token";
  readonly #token: string;

  constructor(
    token: string,
    readonly repository: string,
    readonly expiresAt: Date,
  ) {
    this.#token = token;
  }

  /** The token itself: only for the task sent to the agent, never for a log or a table. */
  reveal(): string {
    return this.#token;
  }

  toJSON(): { username: string; repository: string; expiresAt: string; token: "[redacted]" } {
    return { username: this.username, repository: this.repository, expiresAt: this.expiresAt.toISOString(), token: "[redacted]" };
  }

  toString(): string {
    return `CloneCredential(${this.repository}, [redacted])`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * A fresh clone credential for a private repository (App mode). Token mode has none: a
 * personal token reaches every repository its owner can, so it never leaves the service.
 */
export async function mintCloneCredential(client: GithubClient, repository: RepositoryRef): Promise<CloneCredential | undefined> {
  if (client.mode !== "app") return undefined;
  const { token, expiresAt } = await client.installationToken(repository, CLONE_PERMISSIONS, CLONE_MIN_VALIDITY_MS);
  return new CloneCredential(token, `${repository.owner}/${repository.repo}`, expiresAt);
}
