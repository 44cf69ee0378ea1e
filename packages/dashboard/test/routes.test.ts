import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isPagePath, parseRoute, routeHref, type Route } from "../src/routes.ts";

const drv = "0c3sdvjw5y4l2n8zcq5jq3cyqz1lrd7a-hello-2.12.drv";

describe("routes", () => {
  it("round-trips every page through its URL", () => {
    const routes: Route[] = [
      { page: "jobs" },
      { page: "jobs", repository: "acme/widgets", branch: "main" },
      { page: "job", jobId: "j0193a1b2c3d4deadbeef", tab: "derivations" },
      { page: "job", jobId: "j0193a1b2c3d4deadbeef", tab: "derivations", status: "failed" },
      { page: "job", jobId: "j0193a1b2c3d4deadbeef", tab: "attributes", prefix: "packages.x86_64-linux" },
      { page: "derivation", drv },
      { page: "derivation", drv, job: "j0193a1b2c3d4deadbeef", attempt: 2 },
      { page: "agents" },
      { page: "sign-in", next: "/jobs/j0193a1b2c3d4deadbeef?status=failed" },
    ];
    for (const route of routes) {
      const url = new URL(routeHref(route), "http://x");
      assert.deepEqual(parseRoute(url.pathname, url.search), route, routeHref(route));
    }
  });

  it("ignores query values it does not know", () => {
    assert.deepEqual(parseRoute("/jobs/j1", "?status=exploded&tab=nope"), { page: "job", jobId: "j1", tab: "derivations" });
    assert.deepEqual(parseRoute(`/derivations/${drv}`, "?attempt=-1"), { page: "derivation", drv });
  });

  it("sends sign-in only to pages of this site afterwards", () => {
    for (const next of ["https://evil.example/", "//evil.example/", "/api/tokens", "javascript:alert(1)"]) {
      assert.deepEqual(parseRoute("/sign-in", `?next=${encodeURIComponent(next)}`), { page: "sign-in" }, next);
    }
  });

  it("tells page paths from the API's and anything else", () => {
    for (const path of ["/", "/agents", "/sign-in", "/jobs/j1", `/derivations/${drv}`]) assert.ok(isPagePath(path), path);
    for (const path of ["/api/jobs", "/api", "/webhooks/github", "/agent", "/cache/nix-cache-info", "/_gateway/@connections/x", "/jobs", "/jobs/a/b", "/derivations/x", "/favicon.ico"]) {
      assert.ok(!isPagePath(path), path);
    }
  });
});
