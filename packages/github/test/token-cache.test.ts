import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TokenCache, tokenKey } from "../src/token-cache.ts";

describe("TokenCache", () => {
  const t0 = Date.parse("2025-01-01T10:00:00Z");
  it("keys by installation, repository and permissions (in any order)", () => {
    assert.equal(tokenKey(1, "Octo/Hello", { contents: "read", checks: "write" }), tokenKey(1, "octo/hello", { checks: "write", contents: "read" }));
    assert.notEqual(tokenKey(1, "octo/hello", { checks: "write" }), tokenKey(1, "octo/hello", { checks: "read" }));
    assert.notEqual(tokenKey(1, "octo/hello", { checks: "write" }), tokenKey(2, "octo/hello", { checks: "write" }));
    assert.notEqual(tokenKey(1, "octo/hello", { checks: "write" }), tokenKey(1, "octo/other", { checks: "write" }));
  });

  it("hands a token out only while it has long enough to live", () => {
    const cache = new TokenCache();
    cache.set("k", 1, "octo/hello", { token: "t", expiresAt: new Date(t0 + 3600_000) });
    assert.equal(cache.get("k", new Date(t0 + 54 * 60_000), 5 * 60_000)?.token, "t");
    assert.equal(cache.get("k", new Date(t0 + 56 * 60_000), 5 * 60_000), undefined);
    assert.equal(cache.size, 0);
  });

  it("forgets a repository's tokens, or an installation's", () => {
    const cache = new TokenCache();
    const later = { token: "t", expiresAt: new Date(t0 + 3600_000) };
    cache.set("a", 1, "octo/hello", later);
    cache.set("b", 1, "octo/other", later);
    cache.set("c", 2, "octo/third", later);
    cache.forgetRepository("Octo/Hello");
    assert.equal(cache.size, 2);
    cache.forgetInstallation(1);
    assert.equal(cache.size, 1);
    assert.ok(cache.get("c", new Date(t0), 0));
  });
});
