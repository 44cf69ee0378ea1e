/**
 * Octokit clients for one repository at a time. App mode: the App's JWT finds the
 * repository's installation (`GET /repos/{owner}/{repo}/installation`), then mints an
 * installation token limited to that one repository and the permissions the use needs,
 * cached in memory until a few minutes before it expires. Token mode: one personal token.
 */
import { createAppAuth, type InstallationAccessTokenAuthentication } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { restEndpointMethods } from "@octokit/plugin-rest-endpoint-methods";
import { RequestError } from "@octokit/request-error";
import type { GithubAppConfig, GithubTokenConfig } from "./config.ts";
import { tokenKey, TokenCache, type CachedToken, type Permissions } from "./token-cache.ts";

export const RestOctokit = Octokit.plugin(restEndpointMethods);
export type RestOctokit = InstanceType<typeof RestOctokit>;

export interface RepositoryRef {
  owner: string;
  repo: string;
  /** From the webhook that started the job; saves the installation lookup. */
  installationId?: number;
}

export interface ClientOptions {
  /** The clock token lifetimes are judged by (tests move it). */
  now?: () => Date;
  /** A token is replaced when it has less than this to live (default 5 minutes). */
  refreshMarginMs?: number;
  /** How long a repository's installation id is remembered (default 10 minutes). */
  installationTtlMs?: number;
  /** Each request gives up after this long (default 10 s): a Lambda must not hang on GitHub. */
  requestTimeoutMs?: number;
  /** Octokit's warnings (deprecations, clock skew); never receives tokens. */
  log?: { warn: (message: string) => void; error: (message: string) => void };
}

export interface GithubClient {
  readonly mode: "app" | "token";
  /** An Octokit for requests about this repository, with a token limited to `permissions` (App mode). */
  forRepository(repository: RepositoryRef, permissions: Permissions, minValidityMs?: number): Promise<RestOctokit>;
  /** App mode only: a token for this one repository and these permissions, living at least `minValidityMs`. */
  installationToken(repository: RepositoryRef, permissions: Permissions, minValidityMs?: number): Promise<CachedToken>;
  /** Drops the tokens of a repository GitHub refused them for, or of an installation deleted or suspended. */
  forget(what: { repository?: string; installationId?: number }): void;
}

/** The App is not installed on the repository (or cannot see it). */
export class NotInstalledError extends Error {
  override readonly name = "NotInstalledError";
}

/** Installation tokens are only had in App mode. */
export class NoAppError extends Error {
  override readonly name = "NoAppError";
}

const MINUTE = 60_000;

export function createGithubClient(config: GithubAppConfig | GithubTokenConfig, options: ClientOptions = {}): GithubClient {
  const now = options.now ?? (() => new Date());
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const common = {
    baseUrl: config.apiBaseUrl,
    userAgent: "nimbus-ci",
    log: { debug: () => {}, info: () => {}, warn: options.log?.warn ?? console.warn, error: options.log?.error ?? console.error },
    request: { fetch: timedFetch(timeoutMs) },
  };

  if (config.mode === "token") {
    const octokit = new RestOctokit({ ...common, auth: config.token });
    return {
      mode: "token",
      forRepository: async () => octokit,
      installationToken: async () => {
        throw new NoAppError("installation tokens need App mode; a personal token is never handed out (docs/github.md)");
      },
      forget: () => {},
    };
  }

  const refreshMarginMs = options.refreshMarginMs ?? 5 * MINUTE;
  const installationTtlMs = options.installationTtlMs ?? 10 * MINUTE;
  const app = new RestOctokit({
    ...common,
    authStrategy: createAppAuth,
    // Tokens live in our cache (judged by our clock); auth-app's own would keep them 59 minutes.
    auth: { appId: config.appId, privateKey: config.privateKey, cache: { get: () => "", set: () => {} } },
  });
  const tokens = new TokenCache();
  const installations = new Map<string, { id: number; until: number }>();

  async function installationOf(repository: RepositoryRef): Promise<number> {
    const name = `${repository.owner}/${repository.repo}`.toLowerCase();
    const known = installations.get(name);
    if (known && known.until > now().getTime()) return known.id;
    try {
      const { data } = await app.rest.apps.getRepoInstallation({ owner: repository.owner, repo: repository.repo });
      installations.set(name, { id: data.id, until: now().getTime() + installationTtlMs });
      return data.id;
    } catch (error) {
      if (error instanceof RequestError && error.status === 404) {
        throw new NotInstalledError(
          `the Nimbus GitHub App is not installed on ${repository.owner}/${repository.repo} — install it on that repository (docs/github.md)`,
        );
      }
      throw error;
    }
  }

  async function mint(installationId: number, repository: RepositoryRef, permissions: Permissions): Promise<CachedToken> {
    const auth = (await app.auth({
      type: "installation",
      installationId,
      repositoryNames: [repository.repo],
      permissions,
    })) as InstallationAccessTokenAuthentication;
    return { token: auth.token, expiresAt: new Date(auth.expiresAt) };
  }

  async function installationToken(repository: RepositoryRef, permissions: Permissions, minValidityMs = refreshMarginMs): Promise<CachedToken> {
    const name = `${repository.owner}/${repository.repo}`;
    let installationId = repository.installationId ?? (await installationOf(repository));
    const key = () => tokenKey(installationId, name, permissions);
    const cached = tokens.get(key(), now(), Math.max(minValidityMs, refreshMarginMs));
    if (cached) return cached;
    let token: CachedToken;
    try {
      token = await mint(installationId, repository, permissions);
    } catch (error) {
      // A remembered installation id may be stale (the App was reinstalled): look it up once.
      const stale = repository.installationId !== undefined && error instanceof RequestError && (error.status === 404 || error.status === 422);
      if (!stale) throw error;
      installations.delete(name.toLowerCase());
      installationId = await installationOf({ owner: repository.owner, repo: repository.repo });
      token = await mint(installationId, repository, permissions);
    }
    tokens.set(key(), installationId, name, token);
    return token;
  }

  return {
    mode: "app",
    installationToken,
    async forRepository(repository, permissions, minValidityMs) {
      const { token } = await installationToken(repository, permissions, minValidityMs);
      return new RestOctokit({ ...common, auth: token });
    },
    forget({ repository, installationId }) {
      if (repository !== undefined) tokens.forgetRepository(repository);
      if (installationId !== undefined) {
        tokens.forgetInstallation(installationId);
        for (const [name, entry] of installations) if (entry.id === installationId) installations.delete(name);
      }
    },
  };
}

/** fetch with a deadline, so a request that hangs fails like a lost connection. */
function timedFetch(timeoutMs: number): typeof fetch {
  return (input, init) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    return fetch(input, { ...init, signal });
  };
}
