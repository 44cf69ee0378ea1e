/** The cache library's failures: each names the cache and says what to do. */

/** `binary-caches.json` cannot be used as it is; one line per problem. */
export class CacheConfigError extends Error {
  override readonly name = "CacheConfigError";
  readonly problems: readonly string[];

  constructor(problems: string | readonly string[]) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(list.join("\n"));
    this.problems = list;
  }
}

/** A cache did not answer, or answered with an error, so nothing is known about it. */
export class CacheUnreachableError extends Error {
  override readonly name = "CacheUnreachableError";

  constructor(
    readonly cache: string,
    readonly reason: string,
  ) {
    super(`cache "${cache}" cannot be reached: ${reason}`);
  }
}

/** A cache refused an upload (authentication, permissions, a full disk, a rejected narinfo). */
export class CachePushError extends Error {
  override readonly name = "CachePushError";

  constructor(
    readonly cache: string,
    readonly reason: string,
  ) {
    super(`cache "${cache}" refused the push: ${reason}`);
  }
}
