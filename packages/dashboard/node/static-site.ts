/**
 * Answers the dashboard's files for the local stack's HTTP server: content-hashed assets
 * (cached for good), and index.html for every page path (the app routes in the browser).
 * Anything else — /api, /webhooks, /agent, unknown paths — is not the site's: `undefined`.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isPagePath } from "../src/routes.ts";
import { defaultDistDir, ensureDashboardBuilt } from "./build.ts";

export interface StaticAnswer {
  statusCode: number;
  headers: Record<string, string>;
  body: Buffer;
}

export type StaticSite = (method: string, path: string) => Promise<StaticAnswer | undefined>;

/** Built file names: `assets/<name>-<hash>.<ext>`, nothing with a slash or dot-dot in it. */
const ASSET = /^\/assets\/[A-Za-z0-9_-]+\.(js|css|map|svg|png|woff2)$/;

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  map: "application/json",
  svg: "image/svg+xml",
  png: "image/png",
  woff2: "font/woff2",
};

/**
 * Headers of every page: scripts and styles from this origin only, no framing, and no
 * Referer (a sign-in link's one-time code must not leak to another site).
 */
export const PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-cache",
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * The site the local stack serves: built first if its sources changed. A failed build is told
 * once and the pages answer 503 saying so; the API is served all the same.
 */
export async function dashboardSite(log: (line: string) => void, distDir = defaultDistDir): Promise<StaticSite> {
  try {
    await ensureDashboardBuilt(distDir);
  } catch (error) {
    log(`dashboard: ${error instanceof Error ? error.message : String(error)}`);
  }
  return staticSite(distDir);
}

export function staticSite(distDir: string): StaticSite {
  return async (method, path) => {
    if (method !== "GET" && method !== "HEAD") return undefined;
    const asset = ASSET.exec(path);
    if (asset) {
      const body = await readFile(join(distDir, path)).catch(() => undefined);
      if (!body) return undefined;
      return {
        statusCode: 200,
        headers: {
          "content-type": TYPES[asset[1]!]!,
          "cache-control": "public, max-age=31536000, immutable",
          "x-content-type-options": "nosniff",
        },
        body: method === "HEAD" ? Buffer.alloc(0) : body,
      };
    }
    if (!isPagePath(path)) return undefined;
    const body = await readFile(join(distDir, "index.html")).catch(() => undefined);
    if (!body) {
      return {
        statusCode: 503,
        headers: { "content-type": "text/plain; charset=utf-8" },
        body: Buffer.from("The dashboard is not built: run `npm run build -w @nimbus/dashboard`.\n"),
      };
    }
    return { statusCode: 200, headers: PAGE_HEADERS, body: method === "HEAD" ? Buffer.alloc(0) : body };
  };
}
