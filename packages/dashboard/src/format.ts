/** How values read on the page: names from store paths, durations, times. */

/** `/nix/store/<hash>-hello-2.12.drv` → `hello-2.12`. */
export function drvName(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf("/") + 1).replace(/\.drv$/, "");
  const dash = base.indexOf("-");
  return dash < 0 ? base : base.slice(dash + 1);
}

export const shortCommit = (commit: string) => commit.slice(0, 12);

/** `refs/heads/main` → `main`; pull request refs and tags stay whole. */
export const refLabel = (ref: string | undefined) => (ref?.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : (ref ?? ""));

/** 0.4 s, 12 s, 3 min 5 s, 2 h 10 min. */
export function duration(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function between(from: string, to: string | undefined, now: number): string {
  return duration((to ? Date.parse(to) : now) - Date.parse(from));
}

/** "just now", "5 min ago", "3 h ago", then the date. */
export function ago(iso: string, now: number): string {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en")} ${n === 1 ? one : many}`;
}
