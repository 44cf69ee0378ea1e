import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

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

/** One Chromium per test process and executable, shared by every TestBrowser (each its own context). */
const running = new Map<string, { browser: Promise<Browser>; users: number }>();

async function sharedChromium(executablePath: string): Promise<{ browser: Browser; release(): Promise<void> }> {
  let entry = running.get(executablePath);
  if (!entry) {
    entry = { browser: chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS }), users: 0 };
    running.set(executablePath, entry);
    entry.browser.catch(() => running.delete(executablePath));
  }
  entry.users++;
  const shared = entry;
  const browser = await shared.browser.catch((error: unknown) => {
    shared.users--;
    throw error;
  });
  return {
    browser,
    async release() {
      // The last user closes Chromium, so a test file leaves no browser running behind it.
      if (--shared.users > 0) return;
      running.delete(executablePath);
      await browser.close();
    },
  };
}

/**
 * A fresh browser context (its own cookies and storage, like a new profile) in headless
 * Chromium, launched once per test process: a context costs a fraction of a launch. Fails
 * saying what to install if Chromium is missing.
 */
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
  const { browser, release } = await sharedChromium(executablePath);
  const context = await browser
    .newContext({
      viewport: options.viewport ?? { width: 1280, height: 860 },
      colorScheme: options.colorScheme ?? "light",
      reducedMotion: "reduce",
      bypassCSP: options.bypassCSP ?? false,
    })
    .catch(async (error: unknown) => {
      await release();
      throw error;
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
  let closed: Promise<void> | undefined;
  return {
    context,
    problems,
    async newPage() {
      return context.newPage();
    },
    close() {
      closed ??= context.close().finally(release);
      return closed;
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
