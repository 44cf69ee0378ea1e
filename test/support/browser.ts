import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** Debian's Chromium (`apt-get install -y chromium`); NIMBUS_CHROMIUM points elsewhere. */
export const CHROMIUM_PATH = process.env.NIMBUS_CHROMIUM ?? "/usr/bin/chromium";

/** Headless, and nothing that reaches the network on its own (updates, sync, QUIC probes). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox", // root in CI and containers: Chromium's sandbox needs an unprivileged user
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  context: BrowserContext;
  /** A new tab that records the page's console errors and uncaught exceptions in `problems`. */
  newPage(): Promise<Page>;
  /** Console errors, failed requests' CSP reports and uncaught exceptions, from every page. */
  problems: string[];
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile; fails saying what to install if it is missing. */
export async function launchBrowser(
  options: {
    colorScheme?: "light" | "dark";
    viewport?: { width: number; height: number };
    /** Lets probes given as source text run despite the page's CSP (the bench's timers). */
    bypassCSP?: boolean;
    executablePath?: string;
  } = {},
): Promise<TestBrowser> {
  const executablePath = options.executablePath ?? CHROMIUM_PATH;
  if (!existsSync(executablePath)) {
    throw new Error(`no Chromium at ${executablePath} — install chromium: apt-get install -y chromium (or set NIMBUS_CHROMIUM)`);
  }
  const profile = await mkdtemp(join(tmpdir(), "nimbus-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: options.viewport ?? { width: 1280, height: 860 },
    colorScheme: options.colorScheme ?? "light",
    reducedMotion: "reduce",
    bypassCSP: options.bypassCSP ?? false,
  });
  const problems: string[] = [];
  const watch = (page: Page) => {
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()} (${message.location().url})`);
    });
    page.on("pageerror", (error) => problems.push(`exception: ${error.message}`));
  };
  context.on("page", watch);
  for (const page of context.pages()) watch(page);
  return {
    context,
    problems,
    async newPage() {
      return context.newPage();
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A one-time sign-in code, as `nimbus dashboard` gets it (the API token, bearer only). */
export async function signInCode(baseUrl: string, token: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/dashboard/codes`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json()) as { code?: string };
  if (response.status !== 201 || !body.code) throw new Error(`POST /api/dashboard/codes: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body.code;
}

/** Signs the page in as a person would: the link `nimbus dashboard` prints, opened in the browser. */
export async function signIn(page: Page, baseUrl: string, token: string, next = "/"): Promise<void> {
  const code = await signInCode(baseUrl, token);
  await page.goto(`${baseUrl}/sign-in?code=${encodeURIComponent(code)}&next=${encodeURIComponent(next)}`);
  await page.waitForURL((url) => url.pathname !== "/sign-in");
}
