/**
 * The dashboard's pages and their URLs: parsed in the browser, built for links, and read by the
 * server to know which paths are pages (answered with index.html) — never /api or /webhooks.
 * Everything a page shows that is worth sharing is in its URL (filters, tab, attempt).
 */
import { DerivationStatus } from "@nimbus/protocol";

export type JobTab = "derivations" | "attributes";

export type Route =
  | { page: "jobs"; repository?: string; branch?: string }
  | { page: "job"; jobId: string; tab: JobTab; status?: DerivationStatus; prefix?: string }
  | { page: "derivation"; drv: string; job?: string; attempt?: number }
  | { page: "agents" }
  | { page: "sign-in"; code?: string; next?: string }
  | { page: "not-found"; path: string };

const JOB = /^\/jobs\/([A-Za-z0-9_-]{1,64})$/;
/** A .drv basename: `<hash>-<name>.drv`. */
const DERIVATION = /^\/derivations\/([0-9a-z]{32}-[^/]{1,211}\.drv)$/;

export function parseRoute(pathname: string, search: string): Route {
  const query = new URLSearchParams(search);
  const text = (name: string) => query.get(name)?.trim() || undefined;
  if (pathname === "/") return strip({ page: "jobs", repository: text("repository"), branch: text("branch") });
  if (pathname === "/agents") return { page: "agents" };
  if (pathname === "/sign-in") return strip({ page: "sign-in", code: text("code"), next: safeNext(text("next")) });
  const job = JOB.exec(pathname);
  if (job) {
    const status = DerivationStatus.safeParse(text("status"));
    return strip({
      page: "job",
      jobId: job[1]!,
      tab: text("tab") === "attributes" ? "attributes" : "derivations",
      status: status.success ? status.data : undefined,
      prefix: text("prefix"),
    });
  }
  const derivation = DERIVATION.exec(decodePath(pathname));
  if (derivation) {
    const attempt = Number(text("attempt"));
    return strip({
      page: "derivation",
      drv: derivation[1]!,
      job: text("job"),
      attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : undefined,
    });
  }
  return { page: "not-found", path: pathname };
}

/** The URL of a page: the inverse of parseRoute. */
export function routeHref(route: Route): string {
  switch (route.page) {
    case "jobs":
      return withQuery("/", { repository: route.repository, branch: route.branch });
    case "job":
      return withQuery(`/jobs/${encodeURIComponent(route.jobId)}`, {
        tab: route.tab === "attributes" ? "attributes" : undefined,
        status: route.status,
        prefix: route.prefix,
      });
    case "derivation":
      return withQuery(`/derivations/${encodeURIComponent(route.drv)}`, { job: route.job, attempt: route.attempt?.toString() });
    case "agents":
      return "/agents";
    case "sign-in":
      return withQuery("/sign-in", { code: route.code, next: route.next });
    case "not-found":
      return route.path;
  }
}

/** Whether the server should answer this path with the app's page (index.html). */
export function isPagePath(pathname: string): boolean {
  return parseRoute(pathname, "").page !== "not-found";
}

/** A derivation page's URL part: the .drv basename of a store path. */
export function drvBasename(drvPath: string): string {
  return drvPath.slice(drvPath.lastIndexOf("/") + 1);
}

/** Where sign-in may send the browser afterwards: a page of this site only. */
function safeNext(next: string | undefined): string | undefined {
  if (!next || !next.startsWith("/") || next.startsWith("//")) return undefined;
  const [path = "", search = ""] = next.split("?", 2);
  return isPagePath(path) ? (search ? `${path}?${search}` : path) : undefined;
}

function decodePath(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

function withQuery(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value) params.set(name, value);
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

/** Drops undefined fields, so routes compare equal however they were made. */
function strip<T extends object>(route: T): T {
  return Object.fromEntries(Object.entries(route).filter(([, v]) => v !== undefined)) as T;
}
