import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildDashboard, dashboardIsStale } from "../node/build.ts";
import { staticSite } from "../node/static-site.ts";

describe("dashboard build and static serving", () => {
  let dist: string;
  let script: string;
  before(async () => {
    dist = await mkdtemp(join(tmpdir(), "nimbus-dashboard-"));
    await buildDashboard(dist);
    script = (await readdir(join(dist, "assets"))).find((f) => f.endsWith(".js"))!;
  });
  after(() => rm(dist, { recursive: true, force: true }));

  it("writes content-hashed assets and an index.html that names them", async () => {
    const assets = await readdir(join(dist, "assets"));
    assert.ok(assets.some((f) => /^main-[A-Z0-9]{8}\.js$/.test(f)), assets.join(" "));
    assert.ok(assets.some((f) => /^main-[A-Z0-9]{8}\.css$/.test(f)), assets.join(" "));
    const html = await readFile(join(dist, "index.html"), "utf8");
    assert.match(html, new RegExp(`<script type="module" src="/assets/${script}"></script>`));
    assert.equal(await dashboardIsStale(dist), false);
  });

  it("counts as stale when index.html is older than a source", async () => {
    // Older than any checkout of the sources (an hour ago is not, once the checkout is older).
    const old = new Date("2000-01-01T00:00:00Z");
    await utimes(join(dist, "index.html"), old, old);
    assert.equal(await dashboardIsStale(dist), true);
    assert.equal(await dashboardIsStale(join(dist, "missing")), true);
  });

  it("serves assets for good and the page for every page path, nothing else", async () => {
    const site = staticSite(dist);
    const asset = await site("GET", `/assets/${script}`);
    assert.equal(asset?.statusCode, 200);
    assert.equal(asset?.headers["content-type"], "text/javascript; charset=utf-8");
    assert.match(asset?.headers["cache-control"] ?? "", /immutable/);

    for (const path of ["/", "/agents", "/jobs/j0193a1b2c3d4deadbeef", "/derivations/0c3sdvjw5y4l2n8zcq5jq3cyqz1lrd7a-hello.drv"]) {
      const page = await site("GET", path);
      assert.equal(page?.statusCode, 200, path);
      assert.match(page!.body.toString(), /<div id="app">/);
      assert.match(page!.headers["content-security-policy"] ?? "", /script-src 'self'/);
      assert.equal(page!.headers["referrer-policy"], "no-referrer");
    }
    assert.equal((await site("HEAD", "/"))?.body.length, 0);

    for (const [method, path] of [
      ["GET", "/api/jobs"],
      ["GET", "/webhooks/github"],
      ["GET", "/agent"],
      ["GET", "/assets/../package.json"],
      ["GET", "/assets/missing-AAAAAAAA.js"],
      ["GET", "/package.json"],
      ["POST", "/"],
    ] as const) {
      assert.equal(await site(method, path), undefined, `${method} ${path}`);
    }
  });

  it("says how to build when index.html is missing", async () => {
    const empty = await mkdtemp(join(tmpdir(), "nimbus-dashboard-empty-"));
    await writeFile(join(empty, "unrelated"), "");
    const page = await staticSite(empty)("GET", "/");
    assert.equal(page?.statusCode, 503);
    assert.match(page!.body.toString(), /npm run build -w @nimbus\/dashboard/);
    await rm(empty, { recursive: true, force: true });
  });
});
