/**
 * Installation tokens in memory, keyed by installation, repository and permissions, handed
 * out only while they have long enough to live. Never written anywhere: a Lambda container
 * or the local process keeps them until they expire or the installation goes away.
 */

export type Permission = "read" | "write";
/** The App permissions Nimbus asks for, per token (each token gets only what its use needs). */
export type Permissions = Partial<Record<"checks" | "statuses" | "contents" | "metadata" | "pull_requests", Permission>>;

export interface CachedToken {
  token: string;
  expiresAt: Date;
}

export function tokenKey(installationId: number, repository: string, permissions: Permissions): string {
  const granted = Object.entries(permissions)
    .filter(([, level]) => level !== undefined)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, level]) => `${name}:${level}`)
    .join(",");
  return `${installationId}|${repository.toLowerCase()}|${granted}`;
}

export class TokenCache {
  readonly #tokens = new Map<string, CachedToken & { installationId: number; repository: string }>();

  /** The token, if it lives at least `minValidityMs` more. */
  get(key: string, now: Date, minValidityMs: number): CachedToken | undefined {
    const entry = this.#tokens.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt.getTime() - now.getTime() < minValidityMs) {
      this.#tokens.delete(key);
      return undefined;
    }
    return { token: entry.token, expiresAt: entry.expiresAt };
  }

  set(key: string, installationId: number, repository: string, token: CachedToken): void {
    this.#tokens.set(key, { ...token, installationId, repository: repository.toLowerCase() });
  }

  /** Tokens GitHub refused (revoked early): the next use mints another. */
  forgetRepository(repository: string): void {
    for (const [key, entry] of this.#tokens) if (entry.repository === repository.toLowerCase()) this.#tokens.delete(key);
  }

  /** After an installation is deleted or suspended, its tokens are worthless. */
  forgetInstallation(installationId: number): void {
    for (const [key, entry] of this.#tokens) if (entry.installationId === installationId) this.#tokens.delete(key);
  }

  get size(): number {
    return this.#tokens.size;
  }
}
