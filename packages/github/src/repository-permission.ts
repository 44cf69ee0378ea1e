/** Looks up what a user may do in a repository, to judge a fork approval (fork-approval.ts). */
import { RequestError } from "@octokit/request-error";
import type { GithubClient, RepositoryRef } from "./client.ts";
import type { RepositoryPermission } from "./fork-approval.ts";
import type { Permissions } from "./token-cache.ts";

export const PERMISSION_LOOKUP_PERMISSIONS: Permissions = { metadata: "read" };

/** `GET /repos/{owner}/{repo}/collaborators/{username}/permission`; someone GitHub does not know has none. */
export async function repositoryPermission(client: GithubClient, repository: RepositoryRef, username: string): Promise<RepositoryPermission> {
  const octokit = await client.forRepository(repository, PERMISSION_LOOKUP_PERMISSIONS);
  try {
    const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: repository.owner, repo: repository.repo, username });
    const permission = data.permission;
    return permission === "admin" || permission === "write" || permission === "read" ? permission : "none";
  } catch (error) {
    if (error instanceof RequestError && error.status === 404) return "none";
    throw error;
  }
}
