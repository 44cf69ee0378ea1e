/**
 * Which NixCache `storeURI`s Nimbus accepts: the ones this machine's Nix can open and whose
 * presence Nimbus can query in bulk (file://, http://, https://). Debian's Nix 2.8 is built
 * without S3, so `s3://` is refused at start instead of failing at the first push.
 */

export type StoreScheme = "file" | "http" | "https";

export interface CheckedStoreUri {
  scheme: StoreScheme;
  /** The URI as given. */
  uri: string;
  /** file://: the cache directory. */
  directory?: string;
  /** http(s)://: the base URL without query, with a trailing slash. */
  baseUrl?: string;
}

/** Returns the checked URI, or a sentence saying why it cannot be used and what to do. */
export function checkStoreUri(uri: string, nixVersion = "2.8"): CheckedStoreUri | { problem: string } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) return { problem: `must be a store URI such as "file:///var/cache/nix" or "https://cache.example.com"` };
  if (scheme === "s3") {
    return {
      problem:
        `this Nix (${nixVersion}) cannot open s3:// stores — Debian's nix-bin is built without S3 support. ` +
        `Serve the bucket over HTTPS (a CDN or the bucket's website endpoint) and use that https:// URL, or mount it and use file://`,
    };
  }
  if (scheme !== "file" && scheme !== "http" && scheme !== "https") {
    return { problem: `uses ${scheme}://, which Nimbus cannot use as a binary cache; use file://, http:// or https://` };
  }
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return { problem: "is not a valid URI" };
  }
  if (url.searchParams.has("secret-key")) {
    return { problem: `must not carry ?secret-key=: put the key itself in "signingKeys"` };
  }
  if (url.username !== "" || url.password !== "") {
    return { problem: 'must not carry a user name or password: give credentials in a netrc file (see docs/agent.md, "Binary caches")' };
  }
  if (scheme === "file") {
    if (url.host !== "") return { problem: `must be file:///absolute/path (three slashes), got host "${url.host}"` };
    const directory = decodeURIComponent(url.pathname).replace(/\/+$/, "");
    if (directory === "") return { problem: "must name a directory other than /" };
    return { scheme, uri, directory };
  }
  const base = new URL(url.href);
  base.search = "";
  base.hash = "";
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return { scheme, uri, baseUrl: base.href };
}

/** `uri` with one more query parameter (Nix store URIs take settings as parameters). */
export function withStoreParam(uri: string, name: string, value: string): string {
  return `${uri}${uri.includes("?") ? "&" : "?"}${name}=${value}`;
}
